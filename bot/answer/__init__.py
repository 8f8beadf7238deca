"""The answer side: one Engine that retrieves once and answers extractively or with a verified LLM."""
