// Sign in with an access key id and secret; the secret goes to the server once, never stored.
import { login } from "./api.js";
import { clearError, el, showError } from "./dom.js";

/** Render the login form into ``main``; ``signedIn`` is called with the new session. */
export function loginPage(main, signedIn) {
  const keyId = el("input", { id: "key-id", name: "key-id", autocomplete: "username",
                              required: true, spellcheck: "false" });
  const secret = el("input", { id: "secret", name: "secret", type: "password",
                               autocomplete: "current-password", required: true });
  const form = el("form", { class: "login", id: "login", "aria-label": "Sign in" },
    el("label", { for: "key-id" }, "Access key ID", keyId),
    el("label", { for: "secret" }, "Secret access key", secret),
    el("button", { type: "submit", id: "sign-in" }, "Sign in"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError();
    try {
      const session = await login(keyId.value, secret.value);
      secret.value = "";
      await signedIn(session);
    } catch (error) {
      secret.value = "";
      showError(error);
      secret.focus();
    }
  });
  main.replaceChildren(el("h1", {}, "Sign in"),
    el("p", { class: "muted" }, "Use an access key of this daemon: every action is checked "
      + "against that key's policy, as an API call is."), form);
  keyId.focus();
}
