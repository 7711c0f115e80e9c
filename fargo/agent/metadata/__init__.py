"""The task metadata endpoint (v4, v3) and container credentials at 169.254.170.2, served by the agent."""
