"""spendbot transports: terminal, Slack, Teams, the LLM tool layer and the offline router."""
