/* Every script that changes data sends the page's CSRF token (meta csrf-token) as X-CSRFToken. */
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  var token = meta ? meta.getAttribute("content") : null;
  if (!token) { return; }
  var safe = /^(GET|HEAD|OPTIONS|TRACE)$/i;
  if (window.jQuery) {
    window.jQuery.ajaxSetup({
      beforeSend: function (xhr, settings) {
        if (!safe.test(settings.type) && !this.crossDomain) {
          xhr.setRequestHeader("X-CSRFToken", token);
        }
      }
    });
  }
  if (window.fetch) {
    var originalFetch = window.fetch;
    window.fetch = function (input, init) {
      init = init || {};
      var method = init.method || (input && input.method) || "GET";
      var url = typeof input === "string" ? input : (input && input.url) || "";
      var sameOrigin = url.indexOf("://") === -1 || url.indexOf(window.location.origin + "/") === 0;
      if (!safe.test(method) && sameOrigin) {
        var headers = new Headers(init.headers || (input && input.headers) || {});
        if (!headers.has("X-CSRFToken")) { headers.set("X-CSRFToken", token); }
        init.headers = headers;
      }
      return originalFetch(input, init);
    };
  }
}());
