"""Chat: customers, conversations (queries), messages, the console event log and consumers."""
