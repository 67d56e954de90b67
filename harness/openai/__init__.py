"""The OpenAI API: client, jobs, file rules, prices. The only code that talks to the API."""
