// The REST API, as the logged-in user: the session cookie goes by itself, the CSRF token goes in the
// X-CSRF-Token header of every request that changes something, and errors come in the page's language.
let csrfToken = null;
let language = "en";
let unauthorized = () => {};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function setCsrf(token) {
  csrfToken = token;
}

export function setApiLanguage(lang) {
  language = lang;
}

export function onUnauthorized(fn) {
  unauthorized = fn;
}

export async function api(method, path, body, { query, quiet } = {}) {
  const url = query ? `${path}?${new URLSearchParams(query)}` : path;
  const headers = { Accept: "application/json", "Accept-Language": language };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch (error) {
    throw new ApiError(0, "network", error.message);
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data?.error?.code, data?.error?.message || response.statusText);
    if (response.status === 401 && !quiet) unauthorized(error);
    throw error;
  }
  return data;
}

export const get = (path, query, options) => api("GET", path, undefined, { ...options, query });
export const post = (path, body) => api("POST", path, body === undefined ? {} : body);
export const put = (path, body) => api("PUT", path, body);
export const del = (path) => api("DELETE", path);

// Every page of a list route that answers {"items", "limit", "offset"} (or a bare array).
export async function all(path, query = {}, limit = 500) {
  const items = [];
  for (let offset = 0; ; offset += limit) {
    const page = await get(path, { ...query, limit, offset });
    const found = Array.isArray(page) ? page : page.items;
    items.push(...found);
    if (found.length < limit) return items;
  }
}
