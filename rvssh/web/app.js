// rvssh's page: pick a server, connect, pick an environment and a storage root, start a viewer,
// open it, stop it. Every step is a call of rvssh's API (client.js); every error is its `detail`.

import { ApiError, Cancelled, get, post, setTokenAsker, withLogin } from "./client.js";
import { answerPrompts, askForToken, keyName, trustHostKey } from "./dialogs.js";

const POLL_MS = 3000;
const byId = (id) => document.getElementById(id);
const person = { trustHostKey, answer: answerPrompts };
const state = {
  saved: [], connection: null, config: null, candidates: null, rootTyped: false, sessions: new Map(), started: null,
};

// --- small helpers ----------------------------------------------------------------------

function element(tag, { text, className, attrs } = {}, ...children) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

function button(text, onClick, className = "") {
  const node = element("button", { text, className, attrs: { type: "button" } });
  node.addEventListener("click", onClick);
  return node;
}

function showNotice(text) {
  byId("notice-text").textContent = text;
  byId("notice").hidden = false;
}

function clearNotice() {
  byId("notice").hidden = true;
}

// Run an action; show its error in plain words (a cancelled question is no error).
async function act(action) {
  try {
    clearNotice();
    return await action();
  } catch (error) {
    if (!(error instanceof Cancelled)) showNotice(error instanceof ApiError ? error.message : String(error));
    return undefined;
  }
}

function progress(id, text, busy = true) {
  const node = byId(id);
  node.hidden = !text;
  node.textContent = text || "";
  node.classList.toggle("busy", Boolean(text) && busy);
}

function age(seconds) {
  const whole = Math.max(0, Math.floor(seconds));
  if (whole < 60) return `${whole}s`;
  if (whole < 3600) return `${Math.floor(whole / 60)}m`;
  if (whole < 86400) return `${Math.floor(whole / 3600)}h ${Math.floor((whole % 3600) / 60)}m`;
  return `${Math.floor(whole / 86400)}d ${Math.floor((whole % 86400) / 3600)}h`;
}

// --- servers ------------------------------------------------------------------------------

// One server to pick: its name and buttons on a line, where it leads below.
function serverItem(name, where, buttons) {
  return element("li", { className: "item" },
    element("strong", { text: name, className: "name" }),
    element("div", { className: "buttons" }, ...buttons),
    element("span", { text: where, className: "where muted" }));
}

const savedServers = () => state.saved.filter((entry) => entry.kind === "server");

function renderSaved() {
  const list = byId("saved-list");
  list.replaceChildren(...savedServers().map((server) => {
    const where = `${server.username ? `${server.username}@` : ""}${server.host}${server.port && server.port !== 22 ? `:${server.port}` : ""}`;
    const name = server.name || server.host;
    const connectButton = button("Connect", () => connect({ saved_server_id: server.id }, name), "primary");
    const forgetButton = button("Forget", () => forgetServer(server.id), "quiet");
    connectButton.setAttribute("aria-label", `Connect to ${name}`);
    forgetButton.setAttribute("aria-label", `Forget ${name}`);
    return serverItem(name, where, [connectButton, forgetButton]);
  }));
  byId("saved-empty").hidden = savedServers().length > 0;
}

async function loadSaved() {
  state.saved = (await get("/api/remote/connections/saved")).connections;
  renderSaved();
}

async function addServer(event) {
  event.preventDefault();
  const form = event.target;
  const data = new FormData(form);
  const host = data.get("host").trim();
  const username = data.get("username").trim();
  const keyPath = data.get("private_key_path").trim();
  const server = {
    kind: "server",
    id: `srv_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`,
    name: data.get("name").trim() || (username ? `${username}@${host}` : host),
    host,
    port: Number(data.get("port")) || 22,
    authMethod: keyPath ? "key" : "agent",
    createdAt: Date.now(),
  };
  if (username) server.username = username;
  if (keyPath) server.privateKeyPath = keyPath;
  await act(async () => {
    await post("/api/remote/connections/saved", [...state.saved, server]);
    form.reset();
    byId("add-server").open = false;
    await loadSaved();
  });
}

async function forgetServer(id) {
  await act(async () => {
    await post("/api/remote/connections/saved", state.saved.filter((entry) => entry.id !== id));
    await loadSaved();
  });
}

async function loadSshHosts() {
  const empty = byId("ssh-hosts-empty");
  empty.hidden = false;
  empty.textContent = "Reading your ssh config…";
  const answer = await get("/api/rvssh/ssh-hosts");
  const usable = answer.hosts.filter((host) => !host.error);
  byId("ssh-hosts-list").replaceChildren(...answer.hosts.map((host) => {
    const where = host.error
      ? host.error
      : `${host.user}@${host.hostname}${host.port !== 22 ? `:${host.port}` : ""}${host.proxy_jump ? ` via ${host.proxy_jump}` : ""}`;
    const actions = [];
    if (!host.error) {
      actions.push(button("Connect", () => connect({ host: host.alias }, host.alias), "primary"));
      actions[0].setAttribute("aria-label", `Connect to ${host.alias}`);
    }
    return serverItem(host.alias, where, actions);
  }));
  empty.hidden = usable.length > 0;
  empty.textContent = answer.files.length ? `No Host alias in ${answer.files.join(", ")}.` : "No ssh config file found.";
}

// --- connect, environment, storage root ------------------------------------------------------

async function connect(request, label) {
  await act(async () => {
    state.connection = null;
    byId("connected").hidden = true;
    byId("viewer-idle").hidden = true;
    progress("connect-progress", `Connecting to ${label}…`);
    try {
      const answer = await withLogin((fields) => post("/api/remote/connect", fields), { ...request, use_agent: true }, person);
      state.connection = { ...answer, label };
    } finally {
      progress("connect-progress", "");
      byId("viewer-idle").hidden = state.connection !== null;
      loadKnownHosts().catch(() => {});
    }
    showConnection();
  });
}

function showConnection() {
  const connection = state.connection;
  byId("connected").hidden = false;
  byId("connected-name").textContent = connection.label;
  byId("connected-id").textContent = connection.connection_id;
  Object.assign(state, { config: null, candidates: null, rootTyped: false, started: null });
  byId("root").value = "";
  byId("root-note").textContent = "";
  byId("root-suggestions").replaceChildren();
  progress("start-progress", "");
  loadEnvironments();
  loadCandidates();
}

function envMeta(env) {
  const runicorn = env.runicorn_version ? `runicorn ${env.runicorn_version}` : "no runicorn";
  return `${env.type} · ${env.python_version} · ${runicorn}`;
}

async function loadEnvironments() {
  const list = byId("env-list");
  const status = byId("envs-status");
  list.replaceChildren();
  status.textContent = "Looking for environments…";
  updateStartButton();
  const connectionId = state.connection.connection_id;
  const envs = await act(async () => (await get("/api/remote/conda-envs", { connection_id: connectionId })).envs);
  if (!state.connection || state.connection.connection_id !== connectionId) return;
  if (!envs) {
    status.textContent = "Could not list the environments (the message above says why); connect again to retry.";
    return;
  }
  const ready = envs.filter((env) => env.runicorn_version);
  const preferred = ready.find((env) => env.is_default) || ready[0];
  list.replaceChildren(...envs.map((env, index) => {
    const input = element("input", { attrs: { type: "radio", name: "env", id: `env-${index}`, value: env.name } });
    input.disabled = !env.runicorn_version;
    input.checked = env === preferred;
    input.addEventListener("change", () => loadConfig(env.name));
    const hint = env.runicorn_version ? "" : ` — install it with: ${env.path} -m pip install runicorn`;
    return element("div", { className: "choice" }, input,
      element("label", { attrs: { for: input.id } }, element("strong", { text: env.name }),
        element("span", { className: "muted", text: ` ${envMeta(env)}${hint}` })));
  }));
  const fallback = envs.find((env) => env.is_default) || envs[0];
  status.textContent = ready.length ? "" : `No environment has runicorn. Install it with: ${fallback ? fallback.path : "python3"} -m pip install runicorn, then connect again.`;
  if (preferred) loadConfig(preferred.name);
}

function chosenEnv() {
  const checked = document.querySelector("input[name=env]:checked");
  return checked ? checked.value : null;
}

async function loadConfig(env) {
  state.config = null;
  updateStartButton();
  const connectionId = state.connection.connection_id;
  const config = await act(() => get("/api/remote/config", { connection_id: connectionId, conda_env: env }));
  if (!config || chosenEnv() !== env) return;
  state.config = config;
  suggestRoot();
}

async function loadCandidates() {
  const connectionId = state.connection.connection_id;
  byId("root-note").textContent = "Looking for storage roots on the server…";
  let candidates = [];
  try {
    candidates = (await get("/api/remote/storage-candidates", { connection_id: connectionId })).candidates;
  } catch (error) {
    byId("root-note").textContent = `Could not look for storage roots: ${error.message}`;
  }
  if (!state.connection || state.connection.connection_id !== connectionId) return;
  state.candidates = candidates;
  byId("root-suggestions").replaceChildren(...candidates.map((candidate) =>
    button(`${candidate.path} (${candidate.run_count} runs)`, () => {
      byId("root").value = candidate.path;
      state.rootTyped = true;
      byId("root-note").textContent = "A storage root found on the server.";
      updateStartButton();
    }, "chip")));
  suggestRoot();
}

// As rvssh open: runicorn's own root when it exists, else the best one found, else runicorn's default.
function suggestRoot() {
  const config = state.config;
  if (!config || state.candidates === null || state.rootTyped) {
    updateStartButton();
    return;
  }
  const best = state.candidates[0];
  let root = config.defaultStorageRoot;
  let note = "runicorn's storage root on the server.";
  if (!config.storageRootExists) {
    root = best ? best.path : config.defaultStorageRoot;
    note = best ? `Found on the server, ${best.run_count} runs.` : "runicorn's default; it is created.";
  }
  byId("root").value = root;
  byId("root-note").textContent = note;
  updateStartButton();
}

function updateStartButton() {
  byId("start").disabled = !(state.connection && state.config && chosenEnv() && byId("root").value.trim());
}

async function startViewer(event) {
  event.preventDefault();
  const connection = state.connection;
  const env = chosenEnv();
  const body = {
    host: connection.host, port: connection.port, username: connection.username, use_agent: true,
    remote_root: byId("root").value.trim(), conda_env: env,
  };
  const localPort = Number(byId("local-port").value);
  if (localPort) body.local_port = localPort;
  byId("start").disabled = true;
  progress("start-progress", `Starting the viewer on ${connection.label}… starting`);
  refreshSessions();
  const answer = await act(() => withLogin((fields) => post("/api/remote/viewer/start", fields), body, person));
  updateStartButton();
  if (!answer) {
    progress("start-progress", "");
    return;
  }
  state.started = answer.session.sessionId;
  showStarted(answer.session);
  refreshSessions();
}

// The line under "Start viewer" follows the session it started: running (with Open), reconnecting, stopped.
function showStarted(session) {
  if (!session) {
    progress("start-progress", "The viewer was stopped.", false);
    state.started = null;
    return;
  }
  const note = session.error || session.message;
  progress("start-progress", `${session.status}: ${session.url}${note ? ` (${note})` : ""}`, session.status !== "running");
  if (session.status === "running") {
    const open = element("a", { text: "Open", className: "button", attrs: { href: session.url, target: "_blank", rel: "noopener" } });
    open.setAttribute("aria-label", `Open the viewer at ${session.url}`);
    byId("start-progress").append(" ", open);
  }
}

async function disconnect() {
  const connection = state.connection;
  await act(async () => {
    await post("/api/remote/disconnect", { host: connection.host, port: connection.port, username: connection.username });
    state.connection = null;
    byId("connected").hidden = true;
    byId("viewer-idle").hidden = false;
    refreshSessions();
  });
}

// --- sessions -------------------------------------------------------------------------

function sessionRow(session) {
  const cells = {
    server: element("td", { attrs: { "data-label": "Server" } }),
    env: element("td", { attrs: { "data-label": "Environment" } }),
    root: element("td", { attrs: { "data-label": "Storage root" }, className: "path" }),
    status: element("td", { attrs: { "data-label": "Status" } }),
    age: element("td", { attrs: { "data-label": "Age" } }),
    actions: element("td", { className: "buttons" }),
  };
  const open = element("a", { text: "Open", className: "button", attrs: { target: "_blank", rel: "noopener" } });
  const stop = button("Stop", () => stopSession(session.sessionId, stop));
  cells.actions.append(open, stop);
  const row = element("tr", {}, ...Object.values(cells));
  return { row, cells, open, stop };
}

function updateRow(view, session) {
  view.cells.server.textContent = session.connectionId;
  view.cells.env.textContent = session.condaEnv || "system";
  view.cells.root.textContent = session.remoteRoot;
  const note = session.error || session.message;
  view.cells.status.replaceChildren(element("span", { text: session.status, className: `status ${session.status}` }),
    ...(note ? [element("p", { text: note, className: "note" })] : []));
  view.cells.age.textContent = age(session.uptimeSeconds);
  view.open.href = session.url;
  view.open.setAttribute("aria-label", `Open the viewer of ${session.connectionId} at ${session.url}`);
  view.stop.setAttribute("aria-label", `Stop the viewer of ${session.connectionId} (${session.sessionId})`);
}

// Update the rows in place, so that focus and a click in progress survive the poll.
function renderSessions(sessions) {
  const rows = byId("session-rows");
  const seen = new Set();
  for (const session of sessions) {
    seen.add(session.sessionId);
    let view = state.sessions.get(session.sessionId);
    if (!view) {
      view = sessionRow(session);
      state.sessions.set(session.sessionId, view);
      rows.append(view.row);
    }
    updateRow(view, session);
  }
  for (const [id, view] of state.sessions) {
    if (!seen.has(id)) {
      view.row.remove();
      state.sessions.delete(id);
    }
  }
  if (state.started) {
    const started = sessions.find((session) => session.sessionId === state.started);
    const shown = byId("start-progress").textContent;
    if (!started || !shown.startsWith(`${started.status}: ${started.url}`)) showStarted(started);
  }
  byId("session-table").hidden = sessions.length === 0;
  byId("sessions-empty").hidden = sessions.length > 0;
}

async function refreshSessions() {
  try {
    renderSessions((await get("/api/remote/viewer/sessions")).sessions);
  } catch (error) {
    if (!(error instanceof Cancelled)) showNotice(error.message);
  }
}

async function stopSession(id, control) {
  control.disabled = true;
  control.textContent = "Stopping…";
  await act(() => post("/api/remote/viewer/stop", { session_id: id }));
  control.disabled = false;
  control.textContent = "Stop";
  await refreshSessions();
}

// Keep the sessions current (while the tab is visible).
function pollSessions() {
  setTimeout(() => {
    (document.hidden ? Promise.resolve() : refreshSessions()).finally(pollSessions);
  }, POLL_MS);
}

// --- trusted host keys --------------------------------------------------------------------

async function loadKnownHosts() {
  const entries = (await get("/api/remote/known-hosts/list")).entries;
  byId("known-host-rows").replaceChildren(...entries.map((entry) => {
    let action = element("span", { className: "muted", text: entry.marker || "hashed" });
    if (!entry.hashed && !entry.marker) {
      action = button("Remove", () => removeKnownHost(entry), "quiet");
      action.setAttribute("aria-label", `Remove the ${keyName(entry.key_type)} key of ${entry.known_hosts_host}`);
    }
    return element("tr", {},
      element("td", { text: entry.known_hosts_host, attrs: { "data-label": "Host" } }),
      element("td", { text: keyName(entry.key_type), attrs: { "data-label": "Key type" } }),
      element("td", { attrs: { "data-label": "Fingerprint" } }, element("code", { text: entry.fingerprint_sha256 })),
      element("td", { className: "buttons" }, action));
  }));
  byId("known-hosts-table").hidden = entries.length === 0;
  byId("known-hosts-empty").hidden = entries.length > 0;
}

async function removeKnownHost(entry) {
  await act(async () => {
    await post("/api/remote/known-hosts/remove", { host: entry.host, port: entry.port, key_type: entry.key_type });
    await loadKnownHosts();
  });
}

// --- start ---------------------------------------------------------------------------------

async function start() {
  setTokenAsker(askForToken);
  byId("notice-close").addEventListener("click", clearNotice);
  byId("add-server-form").addEventListener("submit", addServer);
  byId("start-form").addEventListener("submit", startViewer);
  byId("disconnect").addEventListener("click", disconnect);
  byId("root").addEventListener("input", () => {
    state.rootTyped = true;
    byId("root-note").textContent = "";
    updateStartButton();
  });
  get("/api/health").then((health) => { byId("version").textContent = `rvssh ${health.version}`; }).catch(() => {});
  // The sessions first: once they answer, a token (if one is needed) is known for the rest.
  await refreshSessions();
  pollSessions();
  act(loadSaved);
  act(loadKnownHosts);
  act(loadSshHosts);
}

start();
