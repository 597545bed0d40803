"""ChatKit backend: FastAPI + openai-chatkit + openai-agents."""
