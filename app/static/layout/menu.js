/* Side menu: highlight the current page, keep its group open, fold groups,
   collapse the bar on desktops (remembered) and slide it in on phones. */
(function () {
  "use strict";
  var body = document.body;
  var KEY = "sd.sidebar.collapsed";
  var PHONE = 768;

  function segments(path) {
    return path.split("?")[0].split("/").filter(function (p) { return p; });
  }

  function markCurrent() {
    var here = segments(window.location.pathname);
    var best = null, bestScore = 0;
    document.querySelectorAll(".sd-sidebar a.sd-menu-link").forEach(function (link) {
      var want = segments(new URL(link.href, window.location.href).pathname);
      var score = 0;
      while (score < here.length && score < want.length && here[score] === want[score]) score++;
      if (score && score >= want.length - 1 && score > bestScore) { best = link; bestScore = score; }
    });
    if (!best) return;
    best.classList.add("active");
    best.setAttribute("aria-current", "page");
    var group = best.closest(".sd-menu-group");
    if (group) setOpen(group, true);
  }

  function setOpen(group, open) {
    group.classList.toggle("open", open);
    var head = group.querySelector(".sd-menu-group-head");
    if (head) head.setAttribute("aria-expanded", open ? "true" : "false");
  }

  function isPhone() { return window.innerWidth < PHONE; }

  function toggleSidebar() {
    if (isPhone()) {
      body.classList.toggle("sd-sidebar-open");
    } else {
      var collapsed = body.classList.toggle("sd-sidebar-collapsed");
      try { localStorage.setItem(KEY, collapsed ? "1" : "0"); } catch (e) { /* private mode */ }
    }
    var btn = document.querySelector("[data-sd-menu-toggle]");
    if (btn) {
      var shown = isPhone() ? body.classList.contains("sd-sidebar-open")
                            : !body.classList.contains("sd-sidebar-collapsed");
      btn.setAttribute("aria-expanded", shown ? "true" : "false");
    }
  }

  try {
    if (localStorage.getItem(KEY) === "1") body.classList.add("sd-sidebar-collapsed");
  } catch (e) { /* private mode */ }

  document.addEventListener("click", function (event) {
    var head = event.target.closest(".sd-menu-group-head");
    if (head) {
      event.preventDefault();
      var group = head.parentElement;
      if (body.classList.contains("sd-sidebar-collapsed") && !isPhone()) {
        body.classList.remove("sd-sidebar-collapsed");
        try { localStorage.setItem(KEY, "0"); } catch (e) { /* private mode */ }
        setOpen(group, true);
        return;
      }
      setOpen(group, !group.classList.contains("open"));
      return;
    }
    if (event.target.closest("[data-sd-menu-toggle]")) { toggleSidebar(); return; }
    if (event.target.closest("[data-sd-menu-close]")) { body.classList.remove("sd-sidebar-open"); return; }
    // "Back" on error pages: the previous page when there is one, else the link (home).
    if (event.target.closest("[data-sd-back]") && window.history.length > 1) {
      event.preventDefault();
      window.history.back();
    }
  });

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") body.classList.remove("sd-sidebar-open");
  });

  markCurrent();
})();
