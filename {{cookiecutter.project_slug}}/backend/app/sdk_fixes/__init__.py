"""Workarounds for bugs and slow paths in the SDKs, one module per fix.

Written against openai-chatkit 1.6.5, openai-agents 0.24.0 and openai 3.57. Each module
says what upstream does, what the fix costs or saves, and which upstream issue tracks
it. Each has a canary in tests/test_sdk_fixes.py (named ``test_upstream_*``) that fails
when upstream has fixed the problem or an upgrade changed what the fix relies on: then
read the module, and delete the fix rather than keep dead code.

| Module | Upstream problem |
| --- | --- |
| ``message_ids`` | Chat Completions replies and client tool calls all get the id ``__fake_id__`` |
| ``assistant_history`` | earlier replies as ``output_text`` break Chat Completions |
| ``request_parsing`` | ``process()`` builds its request parser on every request |
| ``loaded_history`` | ``stream_agent_response`` reloads the thread's last items |
| ``stream_task_leak`` | a stream ended early leaves a task waiting forever |
| ``orphaned_steps`` | a dropped stream logs "Task exception was never retrieved" |
| ``cancelled_streams`` | the partial reply of a dropped stream is not saved |
| ``conversation_as_is`` | the openai client walks every history item's types |
| ``full_uuid_ids`` | default ids keep 32 random bits |
| ``gc_freeze`` | full collections walk the SDKs' ~250,000 startup objects |
| ``inline_sqlite`` | aiosqlite sends every call to a thread and back |
| ``attachments_first`` | a message's attachments are checked after its thread is stored |
"""
