// WebAuthn for Lanyard's pages: security keys and passkeys.
//
// Each feature is an element the page renders with data-begin, the URL that
// answers a POST with {"options": …, "finish": …}: the options for
// navigator.credentials, and where to post the result. The result goes back
// by an ordinary form post, not fetch, so that the server's redirect moves
// the page on.
//
//   #webauthn-mfa       the second factor at sign-in (#webauthn-mfa-button)
//   #webauthn-enrol     registering a key as the second factor at sign-in
//                       (#webauthn-enrol-button)
//   #webauthn-passkey   signing in with a passkey: from the email field's
//                       autofill where the browser offers it, and from
//                       #webauthn-passkey-button
//   #webauthn-register  the form on the account page that adds a key
//
// The sign-in elements carry data-ceremony and data-csrf, posted as
// ceremony and csrf_token. The script needs no library, and works with or
// without PublicKeyCredential.parseCreationOptionsFromJSON and toJSON.
"use strict";

(function () {
  if (!window.PublicKeyCredential || !navigator.credentials) {
    return; // the pages offer another way in
  }

  function toBase64url(buf) {
    const bytes = new Uint8Array(buf);
    let s = "";
    for (let i = 0; i < bytes.length; i++) {
      s += String.fromCharCode(bytes[i]);
    }
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function fromBase64url(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) {
      s += "=";
    }
    const bin = atob(s);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) {
      bytes[i] = bin.charCodeAt(i);
    }
    return bytes.buffer;
  }

  function descriptor(d) {
    return Object.assign({}, d, { id: fromBase64url(d.id) });
  }

  function creationOptions(json) {
    if (typeof PublicKeyCredential.parseCreationOptionsFromJSON === "function") {
      try {
        return PublicKeyCredential.parseCreationOptionsFromJSON(json);
      } catch (e) {
        // fall back to converting by hand
      }
    }
    const o = Object.assign({}, json);
    o.challenge = fromBase64url(json.challenge);
    o.user = Object.assign({}, json.user, { id: fromBase64url(json.user.id) });
    if (json.excludeCredentials) {
      o.excludeCredentials = json.excludeCredentials.map(descriptor);
    }
    return o;
  }

  function requestOptions(json) {
    if (typeof PublicKeyCredential.parseRequestOptionsFromJSON === "function") {
      try {
        return PublicKeyCredential.parseRequestOptionsFromJSON(json);
      } catch (e) {
        // fall back to converting by hand
      }
    }
    const o = Object.assign({}, json);
    o.challenge = fromBase64url(json.challenge);
    if (json.allowCredentials) {
      o.allowCredentials = json.allowCredentials.map(descriptor);
    }
    return o;
  }

  // credentialJSON is the RegistrationResponseJSON or
  // AuthenticationResponseJSON of a new credential or an assertion.
  function credentialJSON(cred) {
    if (typeof cred.toJSON === "function") {
      try {
        return cred.toJSON();
      } catch (e) {
        // fall back to converting by hand
      }
    }
    const r = cred.response;
    const out = {
      id: cred.id,
      rawId: toBase64url(cred.rawId),
      type: cred.type,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      response: { clientDataJSON: toBase64url(r.clientDataJSON) },
    };
    if (cred.authenticatorAttachment) {
      out.authenticatorAttachment = cred.authenticatorAttachment;
    }
    if (r.attestationObject) {
      out.response.attestationObject = toBase64url(r.attestationObject);
      if (typeof r.getTransports === "function") {
        out.response.transports = r.getTransports();
      }
    } else {
      out.response.authenticatorData = toBase64url(r.authenticatorData);
      out.response.signature = toBase64url(r.signature);
      if (r.userHandle) {
        out.response.userHandle = toBase64url(r.userHandle);
      }
    }
    return out;
  }

  class ServerError extends Error {}

  // begin asks the server for the options of a ceremony.
  async function begin(url, fields) {
    const resp = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json" },
      body: new URLSearchParams(fields),
    });
    const body = await resp.json().catch(function () {
      return {};
    });
    if (!resp.ok || !body.options || !body.finish) {
      throw new ServerError(body.error || "");
    }
    return body;
  }

  // post sends fields to action as an ordinary form, leaving the page.
  function post(action, fields) {
    const form = document.createElement("form");
    form.method = "post";
    form.action = action;
    form.hidden = true;
    for (const name of Object.keys(fields)) {
      const input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      input.value = fields[name];
      form.appendChild(input);
    }
    document.body.appendChild(form);
    form.submit();
  }

  function say(container, text) {
    let p = container.querySelector(".lanyard-webauthn-message");
    if (!p) {
      p = document.createElement("p");
      p.className = "nhsuk-body lanyard-webauthn-message";
      p.setAttribute("role", "alert");
      container.appendChild(p);
    }
    p.textContent = text;
  }

  function problem(err, creating) {
    if (err instanceof ServerError && err.message) {
      return err.message;
    }
    if (err && err.name === "NotAllowedError") {
      return "The request was cancelled or timed out. Try again.";
    }
    if (creating && err && err.name === "InvalidStateError") {
      return "This security key or passkey is already registered.";
    }
    return "Your security key or passkey could not be used. Try again, or use another way to confirm it’s you.";
  }

  function ceremonyFields(el) {
    return { ceremony: el.dataset.ceremony || "", csrf_token: el.dataset.csrf || "" };
  }

  // ceremonyButton wires the second factor (create false) or the enrolment
  // (create true) at sign-in.
  function ceremonyButton(containerID, buttonID, create) {
    const el = document.getElementById(containerID);
    const button = document.getElementById(buttonID);
    if (!el || !button) {
      return;
    }
    button.addEventListener("click", async function () {
      button.disabled = true;
      try {
        const b = await begin(el.dataset.begin, ceremonyFields(el));
        const cred = create
          ? await navigator.credentials.create({ publicKey: creationOptions(b.options.publicKey) })
          : await navigator.credentials.get({ publicKey: requestOptions(b.options.publicKey) });
        post(b.finish, Object.assign(ceremonyFields(el), { credential: JSON.stringify(credentialJSON(cred)) }));
      } catch (err) {
        say(el, problem(err, create));
        button.disabled = false;
      }
    });
  }

  // passkey wires sign-in with a passkey on the first sign-in page: the
  // email field's autofill (conditional mediation) while the page is open,
  // and the button.
  function passkey() {
    const el = document.getElementById("webauthn-passkey");
    const button = document.getElementById("webauthn-passkey-button");
    if (!el || !button) {
      return;
    }
    el.hidden = false;
    let autofill = null; // {controller, done} of the pending autofill request

    async function signIn(mediation, signal) {
      const b = await begin(el.dataset.begin, Object.assign(ceremonyFields(el), { mediation: mediation }));
      if (signal && signal.aborted) {
        return;
      }
      const opts = { publicKey: requestOptions(b.options.publicKey) };
      if (mediation) {
        opts.mediation = mediation;
      }
      if (signal) {
        opts.signal = signal;
      }
      const cred = await navigator.credentials.get(opts);
      if (cred) {
        post(b.finish, Object.assign(ceremonyFields(el), { credential: JSON.stringify(credentialJSON(cred)) }));
      }
    }

    if (typeof PublicKeyCredential.isConditionalMediationAvailable === "function") {
      PublicKeyCredential.isConditionalMediationAvailable().then(function (ok) {
        if (!ok || autofill) {
          return;
        }
        const controller = new AbortController();
        const done = signIn("conditional", controller.signal).catch(function () {
          // Autofill is a convenience: the button and the form remain.
        });
        autofill = { controller: controller, done: done };
      }, function () {});
    }

    button.addEventListener("click", async function () {
      button.disabled = true;
      try {
        if (autofill) {
          // One request at a time: end the autofill one first.
          const pending = autofill;
          autofill = { controller: new AbortController(), done: Promise.resolve() };
          pending.controller.abort();
          await pending.done;
        }
        await signIn("", null);
      } catch (err) {
        say(el, problem(err, false));
        button.disabled = false;
      }
    });
  }

  // register wires the account page's form that adds a key: the form posts
  // the new credential with the name the user gave it.
  function register() {
    const form = document.getElementById("webauthn-register");
    if (!form) {
      return;
    }
    form.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      try {
        const b = await begin(form.dataset.begin, { csrf_token: form.elements.csrf_token.value });
        const cred = await navigator.credentials.create({ publicKey: creationOptions(b.options.publicKey) });
        form.elements.credential.value = JSON.stringify(credentialJSON(cred));
        form.submit();
      } catch (err) {
        say(form, problem(err, true));
        button.disabled = false;
      }
    });
  }

  ceremonyButton("webauthn-mfa", "webauthn-mfa-button", false);
  ceremonyButton("webauthn-enrol", "webauthn-enrol-button", true);
  passkey();
  register();
})();
