// Calls to the JSON API from the pages: the CSRF token of the session, a JSON POST, and a server's refusal in words.
// Shared by the labelling page and the bulk-labelling toolbar.
(function () {
  "use strict";

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) {
      return decodeURIComponent(match[1]);
    }
    const field = document.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  /** POST ``body`` as JSON; resolves to {status, data} (data null for a non-JSON answer), rejects offline. */
  async function postJson(url, body) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken(), Accept: "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try {
      data = await response.json();
    } catch (error) {
      data = null;  // an HTML error page, or no body
    }
    return { status: response.status, data };
  }

  /** The server's 4xx answer in words: "label_class: not a valid choice", or its "detail". */
  function errorText(status, data) {
    if (data && typeof data === "object") {
      if (typeof data.detail === "string") {
        return data.detail;
      }
      const parts = Object.entries(data).map(([field, messages]) =>
        `${field}: ${Array.isArray(messages) ? messages.join(" ") : String(messages)}`);
      if (parts.length) {
        return parts.join("; ");
      }
    }
    return `the server answered ${status}`;
  }

  window.GalaxyApi = { csrfToken, postJson, errorText };
})();
