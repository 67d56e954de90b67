"""Managed fine-tuning and chat APIs: the backend protocol, one module per provider (OpenAI, Azure OpenAI), the
shared job calls, file rules, prices and announced cutoffs. The only code that talks to these APIs."""
