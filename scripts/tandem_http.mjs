// Plain-HTTP helpers for scripts that drive a tandem server (the chat-cost
// bench, the README screenshot): sign an account in and call a server
// function as it.
export const SESSION_COOKIE = 'tandem_session';

/** Signs account `name` up (or in, if it exists); returns its session secret. */
export async function session(base, name, password) {
  for (const fn of ['sign_up', 'log_in']) {
    const res = await fetch(`${base}/api/${fn}`, {
      method: 'POST',
      headers: { Accept: 'application/json', Origin: base },
      body: new URLSearchParams({ name, password }),
    });
    if (res.ok) return new RegExp(`${SESSION_COOKIE}=([^;]+)`).exec(res.headers.get('set-cookie'))[1];
  }
  throw new Error(`cannot sign in ${name}`);
}

/** Calls server function `fn` with a form, as the session `cookie`; returns its JSON. */
export async function call(base, cookie, fn, form) {
  const res = await fetch(`${base}/api/${fn}`, {
    method: 'POST',
    headers: { Accept: 'application/json', Origin: base, Cookie: `${SESSION_COOKIE}=${cookie}` },
    body: new URLSearchParams(form),
  });
  if (!res.ok) throw new Error(`${fn}: ${res.status} ${await res.text()}`);
  return res.json();
}
