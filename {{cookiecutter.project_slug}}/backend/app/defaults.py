"""The answers given to the template, as the defaults of the settings.

This is the only backend module the template renders; everything else reads
``app.config.Settings``. Change a default here, or override it in ``.env``.
"""

PROJECT_NAME = "{{ cookiecutter.project_name }}"
LLM_PROVIDER = "{{ cookiecutter.llm_provider }}"
MODEL_NAME = "{{ cookiecutter.model_name }}"
LLM_BASE_URL = "{{ cookiecutter.llm_base_url }}"
STORE_BACKEND = "{{ cookiecutter.store_backend }}"
DATABASE_NAME = "{{ cookiecutter.project_slug }}"
MCP_SERVER_URL = "{{ cookiecutter.mcp_server_url }}"
# A Python bool whether the answer came as a boolean or as a string (a replay file).
ATTACHMENTS = {{ (cookiecutter.attachments | string | lower) in ["true", "yes", "y", "1", "on"] }}
