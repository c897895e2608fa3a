"""The LINE platform as linecap meets it: webhook signatures and event fields, the Messaging
API client, and events built for the commands that send their own."""
