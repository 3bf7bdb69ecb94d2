// rvssh's API, as the page calls it: the same requests and answers as any client (docs/api.md).
//
// Same origin, so the Host/Origin checks pass as they are. When rvssh cannot
// tell that the page's caller is the account that started it (another OS,
// a non-loopback bind, --token), it answers 401 or 403: the page asks for
// the token once and keeps it in sessionStorage for this tab.

const TOKEN_KEY = "rvssh-token";
const TOKEN_REFUSALS = ["Missing or wrong bearer token", "This rvssh serves only the account that started it"];

export class ApiError extends Error {
  constructor(status, detail) {
    super(detailText(detail, status));
    this.status = status;
    this.detail = detail;
  }

  get code() {
    return this.detail && typeof this.detail === "object" && !Array.isArray(this.detail) ? this.detail.code : undefined;
  }
}

export class Cancelled extends Error {
  constructor() {
    super("Cancelled");
  }
}

// An answer's detail in plain words: the string, an object's message, a 422's problems.
export function detailText(detail, status) {
  if (typeof detail === "string") return detail;
  if (detail && typeof detail.message === "string") return detail.message;
  if (Array.isArray(detail)) {
    return detail.map((item) => `${(item.loc || []).filter((part) => part !== "body").join(".")}: ${item.msg}`).join("; ");
  }
  return `rvssh answered ${status} without saying why`;
}

let askToken = async () => null;
let pendingToken = null;

// Who asks the person for the token (a dialog); it returns the token or null.
export function setTokenAsker(asker) {
  askToken = asker;
}

function refusedForToken(status, body) {
  const detail = body && body.detail;
  return (status === 401 || status === 403) && typeof detail === "string"
    && TOKEN_REFUSALS.some((text) => detail.startsWith(text));
}

// Many requests may be refused at once (the first load): ask the person once for all of them.
function tokenFromPerson(wrong) {
  if (!pendingToken) {
    pendingToken = askToken(wrong).finally(() => { pendingToken = null; });
  }
  return pendingToken;
}

async function send(method, path, body, query) {
  const url = query ? `${path}?${new URLSearchParams(query)}` : path;
  const headers = { Accept: "application/json" };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  const options = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, options);
  } catch (error) {
    throw new ApiError(0, "rvssh does not answer: is rvssh serve still running?");
  }
  const answer = await response.json().catch(() => null);
  return { status: response.status, body: answer, hadToken: Boolean(token) };
}

export async function api(method, path, { body, query } = {}) {
  for (let attempt = 0; attempt < 4; attempt += 1) {
    const reply = await send(method, path, body, query);
    if (reply.status >= 200 && reply.status < 300) return reply.body;
    if (!refusedForToken(reply.status, reply.body)) {
      throw new ApiError(reply.status, reply.body ? reply.body.detail : undefined);
    }
    if (reply.hadToken) sessionStorage.removeItem(TOKEN_KEY);
    if (!sessionStorage.getItem(TOKEN_KEY)) {
      const token = await tokenFromPerson(reply.hadToken);
      if (!token) throw new ApiError(reply.status, reply.body.detail);
      sessionStorage.setItem(TOKEN_KEY, token);
    }
  }
  throw new ApiError(401, "The token was refused");
}

export const get = (path, query) => api("GET", path, { query });
export const post = (path, body) => api("POST", path, { body });

const ACCEPT_FIELDS = ["host", "port", "key_type", "public_key", "fingerprint_sha256"];

// Send `call(fields)` until it succeeds, answering what rvssh asks on the way (the 409 host key of
// each hop, the 401 AUTH_PROMPT questions), as docs/api.md describes. `person` decides:
//   trustHostKey(hostKey) -> Promise<boolean>, answer(detail, newPrompts) -> Promise<string[] | null>.
export async function withLogin(call, fields, person) {
  const sent = { ...fields };
  let responses = [];
  for (let round = 0; round < 24; round += 1) {
    try {
      return await call(sent);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (error.status === 409 && error.code === "HOST_KEY_CONFIRMATION_REQUIRED") {
        const hostKey = error.detail.host_key;
        if (!(await person.trustHostKey(hostKey))) throw new Cancelled();
        await post("/api/remote/known-hosts/accept", Object.fromEntries(ACCEPT_FIELDS.map((name) => [name, hostKey[name]])));
      } else if (error.status === 401 && error.code === "AUTH_PROMPT") {
        const prompts = error.detail.prompts || [];
        const passphrase = prompts.find((prompt) => prompt.kind === "passphrase");
        const asked = passphrase ? [passphrase] : prompts.slice(responses.length);
        if (asked.length === 0) throw error;
        const answers = await person.answer(error.detail, asked);
        if (!answers) throw new Cancelled();
        if (passphrase) {
          sent.passphrase = answers[0];
        } else {
          responses = responses.concat(answers);
          sent.responses = responses;
        }
      } else {
        throw error;
      }
    }
  }
  throw new Error("Gave up after too many host keys and questions");
}
