/*
 * =====================================================================
 *  TEST STAND-IN for OpenAI's <openai-chatkit> custom element.
 *  This is NOT ChatKit. It is served by the template's browser tests in
 *  place of https://cdn.platform.openai.com/deployments/chatkit/chatkit.js
 *  (unreachable from the test machines), through Playwright's page.route.
 *  Never ship it, never load it outside tests.
 * =====================================================================
 *
 * It implements the surface @openai/chatkit-react uses:
 *  - customElements.define("openai-chatkit", ...), so the React wrapper's
 *    customElements.whenDefined(...) resolves and it calls setOptions(options);
 *  - the element methods (setOptions, sendUserMessage, setThreadId, ...);
 *  - DOM CustomEvents "chatkit.ready", "chatkit.error" ({detail: {error}}),
 *    "chatkit.thread.change", "chatkit.response.start|end", ...
 * and speaks the ChatKit HTTP protocol to options.api.url (through
 * options.api.fetch when the page gives one), as the real element does:
 * threads.create / threads.add_user_message answered as text/event-stream,
 * threads.list / items.list / threads.get_by_id answered as JSON.
 *
 * Attachments, when options.composer.attachments.enabled (with api.uploadStrategy
 * {type: "two_phase"}), as ChatKit's composer does them: the file picker
 * (data-standin=file) takes the files within maxCount, maxSize and accept; each one is
 * registered with `attachments.create {name, size, mime_type}`, then its bytes go to the
 * returned upload_descriptor: POST as multipart/form-data with the field `file`, PUT as
 * the raw body, with the descriptor's headers. The message names the attachment ids
 * (input.attachments); image attachments show their preview_url as an <img>, in the
 * composer and in the sent message.
 *
 * Beyond text, as ChatKit does:
 *  - client tools: when a stream ends with a pending `client_tool_call` item, it calls the
 *    page's options.onClientTool({name, params}) and posts the result as
 *    `threads.add_client_tool_output {thread_id, result}`, streaming the continuation into
 *    the same turn (record.clientToolCalls);
 *  - widgets: widget items (type "widget") show their text and buttons; a click sends the
 *    button's onClickAction: handler "client" to the page's options.widgets.onAction(action,
 *    {id, widget}), any other to the backend as `threads.custom_action {thread_id, item_id,
 *    action}` (record.widgetActions); `thread.item.replaced` and widget updates apply;
 *  - options.threadItemActions: thumbs up/down on each reply post `items.feedback
 *    {thread_id, item_ids, kind}` (record.feedback); retry posts `threads.retry_after_item
 *    {thread_id, item_id: the user message before it}` after dropping what followed it;
 *  - options.composer.models: a model picker; each message carries
 *    inference_options.model;
 *  - `stream_options` (allow_cancel: the stop button) and `progress_update` events are
 *    recorded (record.streamOptions, record.progress).
 *
 * Everything it sees is recorded on window.__chatkitStandIn for the tests.
 */
(() => {
  "use strict";

  if (customElements.get("openai-chatkit")) return;

  const record = {
    label: "TEST STAND-IN",
    loadedAt: Date.now(),
    setOptionsCalls: 0,
    options: null,          // JSON-safe snapshot of the last options
    hasCustomFetch: false,  // options.api.fetch was a function
    ready: false,
    threadId: null,
    requests: [],           // {type, params, status, contentType}
    turns: [],              // one per message sent: see send()
    attachments: [],        // one per file picked: see attachFiles()
    initial: null,          // what was loaded after the first setOptions
    errors: [],             // errors reported through chatkit.error
    clientToolCalls: [],    // {name, params, result, error}: see _answerClientTools()
    widgetActions: [],      // {itemId, type, handler, payload, status, error, done}
    feedback: [],           // {itemIds, kind, status}
    streamOptions: null,    // the last stream_options event's stream_options
    progress: [],           // the text of each progress_update event
    element: null,
  };
  window.__chatkitStandIn = record;

  const jsonSafe = (value) =>
    JSON.parse(
      JSON.stringify(value, (_key, v) => (typeof v === "function" ? "[function]" : v)),
    );

  function userInput(text, attachmentIds = [], model = null) {
    return {
      content: [{ type: "input_text", text }],
      attachments: attachmentIds,
      inference_options: model ? { model } : {},
    };
  }

  function textOf(item) {
    return (item.content || [])
      .map((part) => part.text || "")
      .join("");
  }

  class ChatKitStandIn extends HTMLElement {
    constructor() {
      super();
      this._options = null;
      this._items = new Map(); // item id -> {id, role, text, images, widget, ...}
      this._order = [];
      this._threads = [];
      this._pending = []; // uploaded attachments waiting for the next message
      this._model = null; // the model picked in the composer (options.composer.models)
      this._buttons = []; // the rendered widget buttons: {itemId, action}
      this.attachShadow({ mode: "open" });
    }

    connectedCallback() {
      record.element = this;
      this._render();
    }

    // ---- the element API used by @openai/chatkit-react -------------------

    setOptions(options) {
      const first = this._options === null;
      this._options = options;
      record.setOptionsCalls += 1;
      record.options = jsonSafe(options);
      record.hasCustomFetch = typeof options?.api?.fetch === "function";
      this._render();
      if (first) {
        // Asynchronously, as the real element does: the wrapper adds its
        // event listeners after it has called setOptions.
        setTimeout(() => this._start(), 0);
      }
    }

    async focusComposer() {
      this.shadowRoot.querySelector("[data-standin=input]")?.focus();
    }

    async setThreadId(threadId) {
      await this._openThread(threadId);
    }

    async sendUserMessage({ text = "", newThread = false } = {}) {
      if (newThread) this._newThread();
      await this.send(text);
    }

    async setComposerValue({ text = "" } = {}) {
      const input = this.shadowRoot.querySelector("[data-standin=input]");
      if (input) input.value = text;
    }

    async fetchUpdates() {
      if (record.threadId) await this._openThread(record.threadId);
    }

    async sendCustomAction(action, itemId) {
      await this._serverAction(action, itemId || null);
    }

    async showHistory() {
      await this._loadThreads();
    }

    async hideHistory() {}

    // ---- protocol -------------------------------------------------------

    async _post(body) {
      const api = this._options?.api || {};
      const doFetch = typeof api.fetch === "function" ? api.fetch : window.fetch.bind(window);
      const response = await doFetch(api.url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      record.requests.push({
        type: body.type,
        params: body.params,
        status: response.status,
        contentType: response.headers.get("content-type"),
      });
      return response;
    }

    async _json(body) {
      const response = await this._post(body);
      const payload = await response.json().catch(() => null);
      if (!response.ok) {
        throw new Error(`${body.type} failed: HTTP ${response.status} ${JSON.stringify(payload)}`);
      }
      return payload;
    }

    _newTurn(request, text = null, attachments = []) {
      const turn = {
        text,
        attachments,
        request,
        requests: [], // every request of the turn: {type, status}
        status: null,
        contentType: null,
        events: [],
        deltas: [],
        firstDeltaMs: null,
        endMs: null,
        threadId: record.threadId,
        assistantItemIds: [],
        widgetItemIds: [],
        assistantText: "",
        model: null,
        error: null,
        done: false,
        startedAt: performance.now(),
      };
      record.turns.push(turn);
      return turn;
    }

    /** Sends `text` as the real composer does; resolves with what the stream carried. */
    async send(text) {
      const attachmentIds = this._pending.map((attachment) => attachment.id);
      this._pending = [];
      this._renderPending();
      const model = this._pickedModel();
      const input = userInput(text, attachmentIds, model);
      const body = record.threadId
        ? { type: "threads.add_user_message", params: { thread_id: record.threadId, input } }
        : { type: "threads.create", params: { input } };
      const turn = this._newTurn(body.type, text, attachmentIds);
      turn.model = model;
      return this._respond(turn, body);
    }

    /**
     * One response: `body`'s stream, then, while it ends with a pending client tool call, the
     * page's answer and the stream that continues from it.
     */
    async _respond(turn, body) {
      this._emit("chatkit.response.start");
      try {
        await this._stream(turn, body);
        await this._answerClientTools(turn);
      } catch (error) {
        turn.error = String(error);
        this._reportError(error);
      } finally {
        turn.endMs = Math.round(performance.now() - turn.startedAt);
        this._emit("chatkit.response.end");
        // The history panel shows the (possibly new or renamed) thread.
        await this._loadThreads().catch(() => {});
        turn.done = true;
      }
      return turn;
    }

    /** Posts `body` and applies each event of the text/event-stream answer to `turn`. */
    async _stream(turn, body) {
      const since = () => Math.round(performance.now() - turn.startedAt);
      const response = await this._post(body);
      const contentType = response.headers.get("content-type");
      turn.requests.push({ type: body.type, status: response.status });
      if (turn.status === null) {
        turn.status = response.status;
        turn.contentType = contentType;
      }
      if (!response.ok || !contentType?.startsWith("text/event-stream")) {
        throw new Error(`${body.type}: HTTP ${response.status} ${await response.text()}`);
      }
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const data = block
            .split("\n")
            .filter((line) => line.startsWith("data:"))
            .map((line) => line.slice(5).trimStart())
            .join("\n");
          if (data) this._onEvent(JSON.parse(data), turn, since());
        }
      }
    }

    /** As ChatKit does: the thread's last item a pending client tool call -> the page answers. */
    async _answerClientTools(turn) {
      for (let round = 0; round < 5; round += 1) {
        const last = this._items.get(this._order[this._order.length - 1]);
        if (!last || last.type !== "client_tool_call" || last.status !== "pending") return;
        const call = { itemId: last.id, name: last.name, params: last.arguments, result: null, error: null };
        record.clientToolCalls.push(call);
        const onClientTool = this._options?.onClientTool;
        if (typeof onClientTool !== "function") {
          call.error = "the page gives no onClientTool";
          throw new Error(`client tool ${last.name}: ${call.error}`);
        }
        try {
          call.result = jsonSafe((await onClientTool({ name: last.name, params: last.arguments || {} })) ?? null);
        } catch (error) {
          call.error = String(error);
          throw error;
        }
        last.status = "completed";
        await this._stream(turn, {
          type: "threads.add_client_tool_output",
          params: { thread_id: record.threadId, result: call.result },
        });
      }
    }

    _onEvent(event, turn, ms) {
      const entry = { type: event.type, ms };
      switch (event.type) {
        case "thread.created":
          record.threadId = turn.threadId = event.thread.id;
          this._emit("chatkit.thread.change", { threadId: event.thread.id });
          break;
        case "thread.item.added":
        case "thread.item.done":
        case "thread.item.replaced": {
          const item = event.item;
          entry.itemId = item.id;
          entry.itemType = item.type;
          this._upsert(item);
          if (item.type === "assistant_message") {
            if (!turn.assistantItemIds.includes(item.id)) turn.assistantItemIds.push(item.id);
            if (event.type !== "thread.item.added") turn.assistantText = textOf(item);
          }
          if (item.type === "widget" && !turn.widgetItemIds.includes(item.id)) turn.widgetItemIds.push(item.id);
          break;
        }
        case "thread.item.removed":
          entry.itemId = event.item_id;
          this._remove(event.item_id);
          break;
        case "stream_options":
          record.streamOptions = event.stream_options;
          break;
        case "progress_update":
          entry.text = event.text;
          record.progress.push(event.text);
          break;
        case "thread.item.updated": {
          entry.itemId = event.item_id;
          entry.update = event.update?.type;
          if (event.update?.type === "assistant_message.content_part.text_delta") {
            turn.deltas.push({ itemId: event.item_id, delta: event.update.delta, ms });
            if (turn.firstDeltaMs === null) turn.firstDeltaMs = ms;
            const current = this._items.get(event.item_id);
            if (current) current.text += event.update.delta;
          } else {
            this._updateWidget(event.item_id, event.update);
          }
          break;
        }
        case "error":
          entry.message = event.message;
          this._reportError(new Error(event.message || `stream error (${event.code})`));
          break;
        default:
          break;
      }
      turn.events.push(entry);
      this._renderMessages();
    }

    async _start() {
      const initialThread = this._options?.initialThread || null;
      const initial = { initialThread, threads: null, thread: null, items: null, error: null };
      record.initial = initial;
      try {
        initial.threads = await this._loadThreads();
        if (initialThread) {
          this._emit("chatkit.thread.load.start", { threadId: initialThread });
          await this._openThread(initialThread);
          initial.thread = record.threadId;
          initial.items = [...this._order].map((id) => this._items.get(id));
          this._emit("chatkit.thread.load.end", { threadId: initialThread });
        }
      } catch (error) {
        initial.error = String(error);
        this._reportError(error);
      }
      record.ready = true;
      this._emit("chatkit.ready");
    }

    async _loadThreads() {
      const page = await this._json({ type: "threads.list", params: { limit: 20, order: "desc" } });
      this._threads = page?.data || [];
      this._render();
      return page;
    }

    async _openThread(threadId) {
      if (!threadId) {
        this._newThread();
        return;
      }
      const page = await this._json({
        type: "items.list",
        params: { thread_id: threadId, limit: 50, order: "asc" },
      });
      this._items.clear();
      this._order = [];
      for (const item of page?.data || []) this._upsert(item);
      record.threadId = threadId;
      this._emit("chatkit.thread.change", { threadId });
      this._render();
    }

    _newThread() {
      record.threadId = null;
      this._items.clear();
      this._order = [];
      this._emit("chatkit.thread.change", { threadId: null });
      this._render();
    }

    /** Keeps the items the stand-in shows: messages, widgets and client tool calls. */
    _upsert(item) {
      const roles = {
        user_message: "user",
        assistant_message: "assistant",
        widget: "widget",
        client_tool_call: "client_tool_call",
      };
      const role = roles[item.type];
      if (!role) return;
      if (!this._items.has(item.id)) this._order.push(item.id);
      const before = this._items.get(item.id);
      const images = (item.attachments || []).filter((a) => a.type === "image").map((a) => a.preview_url);
      this._items.set(item.id, {
        id: item.id,
        type: item.type,
        role,
        text: item.type === "widget" ? widgetText(item.widget) : textOf(item),
        images: images.length ? images : before?.images || [],
        ...(item.type === "widget" && { widget: item.widget, copyText: item.copy_text ?? null }),
        ...(item.type === "client_tool_call" && {
          name: item.name,
          arguments: item.arguments,
          status: item.status,
          output: item.output ?? null,
        }),
      });
    }

    _remove(id) {
      this._items.delete(id);
      this._order = this._order.filter((other) => other !== id);
    }

    /** `thread.item.updated` for a widget: the new root, or one component replaced. */
    _updateWidget(itemId, update) {
      const item = this._items.get(itemId);
      if (!item || item.type !== "widget" || !update) return;
      if (update.type === "widget.root.updated") item.widget = update.widget;
      else if (update.type === "widget.component.updated") {
        item.widget = replaceComponent(item.widget, update.component_id, update.component);
      } else if (update.type === "widget.streaming_text.value_delta") {
        item.widget = replaceComponent(item.widget, update.component_id, (node) => ({
          ...node,
          value: (node.value || "") + update.delta,
        }));
      } else return;
      item.text = widgetText(item.widget);
    }

    // ---- widget actions, feedback, retry, the model picker -------------------

    /** A widget button's click, as ChatKit handles it. */
    async _widgetAction(itemId, config) {
      const action = { type: config.type, payload: config.payload ?? {} };
      const handler = config.handler === "client" ? "client" : "server";
      const entry = { itemId, type: action.type, handler, payload: action.payload, status: null, error: null, done: false };
      record.widgetActions.push(entry);
      try {
        if (handler === "client") {
          const onAction = this._options?.widgets?.onAction;
          if (typeof onAction !== "function") throw new Error("the page gives no widgets.onAction");
          const item = this._items.get(itemId);
          await onAction(action, { id: itemId, widget: item?.widget });
        } else {
          const turn = await this._serverAction(action, itemId);
          entry.status = turn.status;
          if (turn.error) entry.error = turn.error;
        }
      } catch (error) {
        entry.error = String(error);
        this._reportError(error);
      } finally {
        entry.done = true;
      }
    }

    /** `threads.custom_action`: the backend's action() streams its answer (e.g. the refreshed card). */
    async _serverAction(action, itemId) {
      const turn = this._newTurn("threads.custom_action");
      return this._respond(turn, {
        type: "threads.custom_action",
        params: { thread_id: record.threadId, item_id: itemId, action },
      });
    }

    async _feedback(itemId, kind) {
      const entry = { itemIds: [itemId], kind, status: null, error: null, done: false };
      record.feedback.push(entry);
      try {
        const response = await this._post({
          type: "items.feedback",
          params: { thread_id: record.threadId, item_ids: [itemId], kind },
        });
        entry.status = response.status;
        if (!response.ok) throw new Error(`items.feedback: HTTP ${response.status} ${await response.text()}`);
        const item = this._items.get(itemId);
        if (item) item.feedback = kind;
        this._renderMessages();
      } catch (error) {
        entry.error = String(error);
        this._reportError(error);
      } finally {
        entry.done = true;
      }
    }

    /** Retry a reply: what followed the user message before it goes, and the reply is redone. */
    async retry(itemId) {
      const at = this._order.indexOf(itemId);
      const userId = this._order
        .slice(0, at)
        .reverse()
        .find((id) => this._items.get(id)?.role === "user");
      const turn = this._newTurn("threads.retry_after_item");
      turn.retriedItemId = itemId;
      if (!userId) {
        turn.error = `no user message before ${itemId}`;
        turn.done = true;
        return turn;
      }
      for (const id of this._order.slice(this._order.indexOf(userId) + 1)) this._remove(id);
      this._renderMessages();
      return this._respond(turn, {
        type: "threads.retry_after_item",
        params: { thread_id: record.threadId, item_id: userId },
      });
    }

    _models() {
      const models = this._options?.composer?.models;
      return Array.isArray(models) && models.length > 0 ? models : null;
    }

    _pickedModel() {
      const models = this._models();
      if (!models) return null;
      if (this._model && models.some((m) => m.id === this._model && !m.disabled)) return this._model;
      return (models.find((m) => m.default) || models.find((m) => !m.disabled) || models[0]).id;
    }

    // ---- attachments: what ChatKit's composer does with a picked file ---------

    _attachmentOptions() {
      const options = this._options || {};
      const attachments = options.composer?.attachments;
      if (!attachments?.enabled) return null;
      if (options.api?.uploadStrategy?.type !== "two_phase") return null;
      return attachments;
    }

    _accepts(file, accept) {
      if (!accept) return true;
      const name = file.name.toLowerCase();
      return Object.entries(accept).some(
        ([mime, extensions]) =>
          (mime.endsWith("/*") ? file.type.startsWith(mime.slice(0, -1)) : file.type === mime) ||
          extensions.some((extension) => name.endsWith(extension.toLowerCase())),
      );
    }

    /** Registers and uploads each file, as the composer does when files are picked or dropped. */
    async attachFiles(files) {
      const policy = this._attachmentOptions();
      const results = [];
      for (const file of files) {
        const entry = {
          name: file.name,
          size: file.size,
          mimeType: file.type,
          refused: null, // why the composer refused it before any request
          create: null, // {status, attachment}
          upload: null, // {method, url, status, body}
          attachment: null,
          error: null,
          done: false,
        };
        record.attachments.push(entry);
        results.push(entry);
        try {
          if (!policy) entry.refused = "attachments are off";
          else if (this._pending.length >= (policy.maxCount ?? 10)) entry.refused = "too many files";
          else if (typeof policy.maxSize === "number" && file.size > policy.maxSize) {
            entry.refused = "too large";
          } else if (!this._accepts(file, policy.accept)) entry.refused = "type not accepted";
          if (!entry.refused) await this._upload(file, entry);
        } catch (error) {
          entry.error = String(error);
          this._reportError(error);
        } finally {
          entry.done = true;
          this._renderPending();
        }
      }
      return results;
    }

    async _upload(file, entry) {
      const params = { name: file.name, size: file.size, mime_type: file.type };
      const response = await this._post({ type: "attachments.create", params });
      const created = await response.json().catch(() => null);
      entry.create = { status: response.status, attachment: created };
      if (!response.ok) throw new Error(`attachments.create: HTTP ${response.status} ${JSON.stringify(created)}`);
      let attachment = created;
      const descriptor = created.upload_descriptor;
      if (descriptor) {
        let body = file;
        if (descriptor.method === "POST") {
          body = new FormData();
          body.append("file", file, file.name);
        }
        const api = this._options?.api || {};
        const doFetch = typeof api.fetch === "function" ? api.fetch : window.fetch.bind(window);
        const uploaded = await doFetch(descriptor.url, {
          method: descriptor.method,
          headers: descriptor.headers || {},
          body,
        });
        const text = await uploaded.text();
        entry.upload = { method: descriptor.method, url: descriptor.url, status: uploaded.status, body: text };
        if (!uploaded.ok) throw new Error(`upload: HTTP ${uploaded.status} ${text}`);
        try {
          attachment = { ...created, ...JSON.parse(text) };
        } catch {
          // A presigned PUT answers with the object store's own body, not the attachment.
        }
      }
      entry.attachment = attachment;
      this._pending.push(attachment);
    }

    _renderPending() {
      const box = this.shadowRoot?.querySelector("[data-standin=pending]");
      if (!box) return;
      box.innerHTML = this._pending
        .map((a) =>
          a.type === "image"
            ? `<img data-standin="preview" data-attachment-id="${escape(a.id)}" alt="${escape(a.name)}" src="${escape(a.preview_url)}" />`
            : `<span data-standin="file-chip" data-attachment-id="${escape(a.id)}">${escape(a.name)}</span>`,
        )
        .join("");
    }

    // ---- errors and events ------------------------------------------------

    /** Reports an error the way the real element does: a "chatkit.error" DOM event. */
    _reportError(error) {
      record.errors.push(`${error.name}: ${error.message}`);
      this._emit("chatkit.error", { error });
    }

    /** For tests: `emitError("IntegrationError", "Domain verification failed")`. */
    emitError(name, message) {
      const error = new Error(message);
      error.name = name;
      this._reportError(error);
    }

    _emit(name, detail) {
      this.dispatchEvent(new CustomEvent(name, { detail, bubbles: false, composed: true }));
    }

    // ---- a plain UI, so screenshots show what happened ----------------------

    _render() {
      const root = this.shadowRoot;
      const options = this._options || {};
      const dark = options.theme?.colorScheme === "dark" || options.theme === "dark";
      const greeting = options.startScreen?.greeting || "What can I help with today?";
      const prompts = options.startScreen?.prompts || [];
      const current = this._threads.find((t) => t.id === record.threadId);
      const attachments = this._attachmentOptions();
      const accept = Object.entries(attachments?.accept || {}).flatMap(([mime, ext]) => [mime, ...ext]);
      const models = this._models();
      const picked = this._pickedModel();
      const modelPicker = models
        ? `<select data-standin="model">${models
            .map((m) => `<option value="${escape(m.id)}"${m.id === picked ? " selected" : ""}${m.disabled ? " disabled" : ""}>${escape(m.label)}</option>`)
            .join("")}</select>`
        : "";
      const attachPicker = attachments
        ? `<label class="attach" data-standin="attach">Attach<input type="file" multiple data-standin="file" accept="${escape(accept.join(","))}" hidden /></label>`
        : "";
      // A re-render (new options: the upload policy, the model list) keeps the draft, as ChatKit's composer does.
      const draft = root.querySelector("[data-standin=input]")?.value || "";
      root.innerHTML = `
        <style>
          :host { display: block; font: 14px/1.4 system-ui, sans-serif; }
          .wrap { display: flex; flex-direction: column; height: 100%; min-height: 420px;
                  background: ${dark ? "#1d1d20" : "#fff"}; color: ${dark ? "#eee" : "#222"}; }
          .label { background: repeating-linear-gradient(45deg, #ffd400, #ffd400 10px, #222 10px, #222 20px);
                   padding: 4px; }
          .label span { background: #ffd400; color: #000; font-weight: 700; padding: 2px 8px; }
          header { display: flex; justify-content: space-between; padding: 8px 12px;
                   border-bottom: 1px solid #8884; font-weight: 600; }
          .body { display: flex; flex: 1; min-height: 0; }
          aside { width: 180px; border-right: 1px solid #8884; padding: 8px; overflow: auto; font-size: 12px; }
          aside div { padding: 2px 0; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
          .messages { flex: 1; padding: 12px; overflow: auto; }
          .msg { margin: 6px 0; padding: 6px 10px; border-radius: 10px; max-width: 80%; white-space: pre-wrap; }
          .user { margin-left: auto; background: #3b82f633; }
          .assistant { background: #8882; }
          .prompts button { margin: 4px 4px 0 0; }
          form { display: flex; gap: 8px; padding: 8px; border-top: 1px solid #8884; }
          input { flex: 1; padding: 6px 8px; }
          .meta { font-size: 11px; opacity: .7; padding: 0 12px 6px; }
          .pending { display: flex; gap: 6px; padding: 0 8px; }
          .pending img, .msg img { width: 48px; display: block; margin-bottom: 4px; image-rendering: pixelated; }
          .attach { align-self: center; cursor: pointer; font-size: 12px; }
          .widget { border: 1px solid #8886; border-radius: 10px; padding: 8px 10px; margin: 6px 0; max-width: 80%; }
          .widget button, .actions button { margin: 4px 4px 0 0; font-size: 12px; }
          .actions { margin: -2px 0 6px; }
          .actions .chosen { outline: 2px solid #3b82f6; }
          .tool { font-size: 11px; opacity: .7; }
        </style>
        <div class="wrap">
          <div class="label"><span data-standin="label">TEST STAND-IN — not OpenAI ChatKit</span></div>
          <header>
            <span data-standin="title">${escape(current?.title || (record.threadId ? "Chat" : "New chat"))}</span>
            <span>history ${options.history?.enabled ? "on" : "off"}${options.history?.showRename ? " · rename" : ""}${options.history?.showDelete ? " · delete" : ""}</span>
          </header>
          <div class="body">
            <aside data-standin="threads">${this._threads
              .map((t) => `<div data-thread-id="${escape(t.id)}">${escape(t.title || t.id)}</div>`)
              .join("") || "<div>(no threads)</div>"}</aside>
            <div class="messages" data-standin="messages"></div>
          </div>
          <div class="pending" data-standin="pending"></div>
          <form data-standin="composer">
            ${attachPicker}
            ${modelPicker}
            <input data-standin="input" placeholder="${escape(options.composer?.placeholder || "Message the AI")}" />
            <button type="submit" data-standin="send">Send</button>
          </form>
          <div class="meta" data-standin="meta">api.url=${escape(options.api?.url || "")} · domainKey=${escape(options.api?.domainKey || "")} · theme=${dark ? "dark" : "light"} · feedback=${options.threadItemActions?.feedback ? "on" : "off"} · retry=${options.threadItemActions?.retry ? "on" : "off"} · attachments=${attachments ? `on (max ${attachments.maxCount} × ${attachments.maxSize} bytes)` : "off"}</div>
        </div>`;
      root.querySelector("[data-standin=input]").value = draft;
      root.querySelector("[data-standin=model]")?.addEventListener("change", (event) => {
        this._model = event.target.value;
      });
      root.querySelector("[data-standin=file]")?.addEventListener("change", (event) => {
        const picked = [...event.target.files];
        event.target.value = "";
        this.attachFiles(picked);
      });
      this._renderPending();
      const form = root.querySelector("form");
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        const input = root.querySelector("[data-standin=input]");
        const text = input.value.trim();
        if (!text) return;
        input.value = "";
        this.send(text);
      });
      this._renderMessages(greeting, prompts);
    }

    _renderMessages(greeting, prompts) {
      const box = this.shadowRoot.querySelector("[data-standin=messages]");
      if (!box) return;
      if (this._order.length === 0) {
        const options = this._options || {};
        greeting ??= options.startScreen?.greeting || "What can I help with today?";
        prompts ??= options.startScreen?.prompts || [];
        box.innerHTML = `<h3 data-standin="greeting">${escape(greeting)}</h3><div class="prompts">${prompts
          .map((p, i) => `<button type="button" data-prompt="${i}">${escape(p.label)}</button>`)
          .join("")}</div>`;
        box.querySelectorAll("[data-prompt]").forEach((button) =>
          button.addEventListener("click", () => {
            const prompt = prompts[Number(button.dataset.prompt)].prompt;
            this.send(typeof prompt === "string" ? prompt : prompt.map((p) => p.text).join(""));
          }),
        );
        return;
      }
      const actions = this._options?.threadItemActions || {};
      this._buttons = [];
      box.innerHTML = this._order
        .map((id) => this._items.get(id))
        .map((m) => {
          if (m.role === "widget") {
            return `<div class="widget" data-role="widget" data-item-id="${escape(m.id)}">${this._widgetHtml(m.id, m.widget)}</div>`;
          }
          if (m.role === "client_tool_call") {
            return `<div class="tool" data-role="client_tool_call" data-item-id="${escape(m.id)}">client tool ${escape(m.name)}: ${escape(m.status)}</div>`;
          }
          const message = `<div class="msg ${m.role}" data-role="${m.role}" data-item-id="${escape(m.id)}">${m.images
            .map((url) => `<img data-standin="message-image" src="${escape(url)}" alt="" />`)
            .join("")}${escape(m.text)}</div>`;
          if (m.role !== "assistant" || !(actions.feedback || actions.retry)) return message;
          const id = escape(m.id);
          const chosen = (kind) => (m.feedback === kind ? ' class="chosen"' : "");
          return `${message}<div class="actions" data-standin="item-actions" data-item-id="${id}">${
            actions.feedback
              ? `<button type="button" data-standin="thumbs-up" data-item-id="${id}"${chosen("positive")}>Thumbs up</button>` +
                `<button type="button" data-standin="thumbs-down" data-item-id="${id}"${chosen("negative")}>Thumbs down</button>`
              : ""
          }${actions.retry ? `<button type="button" data-standin="retry" data-item-id="${id}">Retry</button>` : ""}</div>`;
        })
        .join("");
      box.querySelectorAll("[data-standin=widget-button]").forEach((button) =>
        button.addEventListener("click", () => {
          const { itemId, action } = this._buttons[Number(button.dataset.button)];
          this._widgetAction(itemId, action);
        }),
      );
      for (const [selector, kind] of [["thumbs-up", "positive"], ["thumbs-down", "negative"]]) {
        box.querySelectorAll(`[data-standin=${selector}]`).forEach((button) =>
          button.addEventListener("click", () => this._feedback(button.dataset.itemId, kind)),
        );
      }
      box.querySelectorAll("[data-standin=retry]").forEach((button) =>
        button.addEventListener("click", () => this.retry(button.dataset.itemId)),
      );
    }

    /** A widget tree as plain HTML: its text components, and its buttons (with their actions). */
    _widgetHtml(itemId, node) {
      if (!node || typeof node !== "object") return "";
      const children = (node.children || []).map((child) => this._widgetHtml(itemId, child)).join("");
      if (node.type === "Button") {
        const index = this._buttons.push({ itemId, action: node.onClickAction || null }) - 1;
        const disabled = node.onClickAction ? "" : " disabled";
        return `<button type="button" data-standin="widget-button" data-button="${index}" data-action-type="${escape(
          node.onClickAction?.type || "",
        )}"${disabled}>${escape(node.label || "")}</button>`;
      }
      const text = typeof node.value === "string" ? `<div data-standin="widget-text">${escape(node.value)}</div>` : "";
      return `<div data-widget-type="${escape(node.type || "")}">${text}${children}</div>`;
    }
  }

  /** The text a widget tree shows (its components' `value`s), one per line. */
  function widgetText(node) {
    if (!node || typeof node !== "object") return "";
    const own = typeof node.value === "string" ? [node.value] : [];
    if (node.type === "Button" && node.label) own.push(node.label);
    return [...own, ...(node.children || []).map(widgetText)].filter(Boolean).join("\n");
  }

  /** The widget tree with the component `id` replaced (by `next`, or by `next(old)`). */
  function replaceComponent(node, id, next) {
    if (!node || typeof node !== "object") return node;
    if (node.id === id) return typeof next === "function" ? next(node) : next;
    if (!Array.isArray(node.children)) return node;
    return { ...node, children: node.children.map((child) => replaceComponent(child, id, next)) };
  }

  function escape(text) {
    return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  }

  customElements.define("openai-chatkit", ChatKitStandIn);
})();
