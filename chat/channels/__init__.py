"""Channel adapters (WhatsApp…) and the stand-ins of the providers they talk to."""
