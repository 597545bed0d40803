"""The answers given to the template, as the defaults of the settings.

This is the only backend module the template renders; everything else reads
``app.config.Settings``. Change a default here, or override it in ``.env``.
Free-text answers are written as JSON strings, which are Python strings too,
so quotes and backslashes in them stay valid.
"""

PROJECT_NAME = {{ cookiecutter.project_name | tojson }}
LLM_PROVIDER = "{{ cookiecutter.llm_provider }}"
MODEL_NAME = {{ cookiecutter.model_name | tojson }}
LLM_BASE_URL = {{ cookiecutter.llm_base_url | tojson }}
STORE_BACKEND = "{{ cookiecutter.store_backend }}"
DATABASE_NAME = "{{ cookiecutter.project_slug }}"
MCP_SERVER_URL = {{ cookiecutter.mcp_server_url | tojson }}
# A Python bool whether the answer came as a boolean or as a string (a replay file).
ATTACHMENTS = {{ (cookiecutter.attachments | string | lower) in ["true", "yes", "y", "1", "on"] }}
AUTH_MODE = "{{ cookiecutter.auth }}"
