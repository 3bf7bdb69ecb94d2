// The page's questions, as modal <dialog>s: Enter answers, Escape or Cancel declines, focus comes back.

const KEY_NAMES = {
  "ssh-ed25519": "ED25519",
  "ssh-rsa": "RSA",
  "ssh-dss": "DSA",
  "ecdsa-sha2-nistp256": "ECDSA",
  "ecdsa-sha2-nistp384": "ECDSA",
  "ecdsa-sha2-nistp521": "ECDSA",
  "sk-ssh-ed25519@openssh.com": "ED25519-SK",
  "sk-ecdsa-sha2-nistp256@openssh.com": "ECDSA-SK",
};

export const keyName = (keyType) => KEY_NAMES[keyType] || keyType;

const byId = (id) => document.getElementById(id);

// Show `dialog`; resolve with `collect()` when its form is submitted, with null when declined.
function ask(dialog, collect, focus) {
  const before = document.activeElement;
  const form = dialog.querySelector("form");
  return new Promise((resolve) => {
    const finish = (value) => {
      form.removeEventListener("submit", onSubmit);
      dialog.removeEventListener("cancel", onCancel);
      cancelButton.removeEventListener("click", onCancel);
      if (dialog.open) dialog.close();
      if (before && typeof before.focus === "function") before.focus();
      resolve(value);
    };
    const onSubmit = (event) => {
      event.preventDefault();
      finish(collect());
    };
    const onCancel = (event) => {
      event.preventDefault();
      finish(null);
    };
    const cancelButton = dialog.querySelector(".cancel");
    form.addEventListener("submit", onSubmit);
    dialog.addEventListener("cancel", onCancel);
    cancelButton.addEventListener("click", onCancel);
    dialog.showModal();
    (focus || form.querySelector("input, button")).focus();
  });
}

// The 409's key, as ssh shows it; for a changed key the one trusted until now, and a warning.
export async function trustHostKey(hostKey) {
  const dialog = byId("host-key-dialog");
  const changed = hostKey.reason === "changed";
  dialog.classList.toggle("changed", changed);
  byId("host-key-title").textContent = changed ? "The host key has changed" : "Unknown host key";
  byId("host-key-lead").textContent = changed
    ? `The key ${hostKey.known_hosts_host} presents is not the one trusted for it. Someone could be eavesdropping `
      + "(a man-in-the-middle attack), or the server was reinstalled. Trust the new key only if its administrator "
      + "confirms this fingerprint."
    : `The authenticity of host '${hostKey.known_hosts_host}' can't be established. Compare the fingerprint with `
      + "the one the server's administrator gives you.";
  byId("host-key-host").textContent = hostKey.known_hosts_host;
  byId("host-key-type").textContent = `${keyName(hostKey.key_type)} (${hostKey.key_type})`;
  byId("host-key-fingerprint").textContent = hostKey.fingerprint_sha256;
  byId("host-key-expected").textContent = hostKey.expected_fingerprint_sha256 || "(unknown)";
  byId("host-key-advice").textContent = changed
    ? "Trusting it replaces the old key of this type in rvssh's known_hosts."
    : "Trusting it adds it to rvssh's known_hosts; rvssh never trusts a key by itself.";
  byId("host-key-trust").textContent = changed ? "Replace the trusted key and connect" : "Trust and connect";
  const cancel = dialog.querySelector(".cancel");
  return (await ask(dialog, () => true, cancel)) === true;
}

// The server's questions (a password, a passphrase, a code): one field each, hidden unless `echo`.
export async function answerPrompts(detail, prompts) {
  const dialog = byId("prompt-dialog");
  byId("prompt-message").textContent = detail.message || "";
  const fields = byId("prompt-fields");
  fields.replaceChildren();
  const inputs = prompts.map((prompt, index) => {
    const label = document.createElement("label");
    const input = document.createElement("input");
    input.id = `prompt-answer-${index}`;
    label.htmlFor = input.id;
    label.textContent = prompt.prompt;
    input.type = prompt.echo ? "text" : "password";
    input.autocomplete = prompt.kind === "keyboard-interactive" ? "one-time-code" : "current-password";
    input.spellcheck = false;
    fields.append(label, input);
    return input;
  });
  const answers = await ask(dialog, () => inputs.map((input) => input.value));
  fields.replaceChildren();  // nothing typed stays in the page
  return answers;
}

// The token, when rvssh cannot tell that the page's caller is its own account.
export async function askForToken(wrong) {
  const dialog = byId("token-dialog");
  const input = byId("token-input");
  input.value = "";
  byId("token-title").textContent = wrong ? "That token was refused: try again" : "This rvssh asks for its token";
  const token = await ask(dialog, () => input.value.trim(), input);
  input.value = "";
  return token || null;
}
