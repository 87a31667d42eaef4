/* The list grid (app/views/grid.py): filter panel, pickers, column chooser, bulk bar.
 *
 * Filters live in the URL (f_<field>=a,b, f_<field>__from/__to/__has), so paging,
 * sorting and page sizes keep them; several values of one control are joined
 * with commas because FAB's paging links keep one value per argument.
 */
(function ($) {
  "use strict";

  var bar = document.querySelector(".sd-grid-bar");
  var text = function (name, fallback) {
    return (bar && bar.getAttribute("data-" + name)) || fallback;
  };

  function listUrl(params) {
    var query = params.toString();
    return window.location.pathname + (query ? "?" + query : "?sv=none");
  }

  function currentParams() {
    var params = new URLSearchParams(window.location.search);
    Array.from(params.keys()).forEach(function (key) {
      if (key.indexOf("page_") === 0 || key === "sv") { params.delete(key); }
    });
    return params;
  }

  // -- pickers (select2, the record service's JSON) --------------------------------
  function initPickers(root) {
    if (!$.fn.select2) { return; }
    var language = {
      searching: function () { return text("searching", "Searching…"); },
      noResults: function () { return text("no-results", "No matches"); },
      loadingMore: function () { return text("loading-more", "Loading more…"); },
      errorLoading: function () { return text("error-loading", "Could not load"); },
      removeAllItems: function () { return text("remove-all", "Remove all"); },
      inputTooShort: function () { return ""; }
    };
    $(root).find("select.sd-picker").each(function () {
      var $el = $(this);
      $el.select2({
        theme: "bootstrap", width: "100%", language: language,
        placeholder: $el.data("placeholder") || "", allowClear: !this.multiple,
        ajax: {
          url: $el.data("url"), dataType: "json", delay: 250,
          data: function (p) { return { q: p.term || "", page: p.page || 1 }; }
        }
      });
    });
    $(root).find("select.sd-choice").each(function () {
      $(this).select2({ theme: "bootstrap", width: "100%", language: language,
                        placeholder: $(this).data("placeholder") || "" });
    });
  }

  // -- the filter panel ---------------------------------------------------------------
  var sheet = document.getElementById("sd-filter-panel");
  if (sheet && window.innerWidth < 768) { sheet.classList.remove("open"); }  // a sheet on a phone
  document.querySelectorAll(".sd-filter-toggle").forEach(function (button) {
    button.addEventListener("click", function () {
      var open = sheet.classList.toggle("open");
      button.setAttribute("aria-expanded", open ? "true" : "false");
    });
  });
  document.querySelectorAll(".sd-filter-close").forEach(function (button) {
    button.addEventListener("click", function () { sheet.classList.remove("open"); });
  });

  var panel = document.querySelector("form.sd-filter-panel");
  if (panel) {
    panel.addEventListener("submit", function (event) {
      event.preventDefault();
      var joined = {};
      var order = [];
      new FormData(panel).forEach(function (value, key) {
        value = String(value).trim();
        if (!value) { return; }
        if (!(key in joined)) { joined[key] = []; order.push(key); }
        joined[key].push(value);
      });
      var params = new URLSearchParams();
      order.forEach(function (key) {
        if (key.indexOf("f_") === 0) { params.set(key, joined[key].join(",")); }
        else { joined[key].forEach(function (v) { params.append(key, v); }); }
      });
      window.location.assign(listUrl(params));
    });
  }

  // -- the column chooser ---------------------------------------------------------------
  document.querySelectorAll(".sd-columns-menu").forEach(function (menu) {
    menu.addEventListener("click", function (event) {
      event.stopPropagation();  // keep the dropdown open while choosing
      var button = event.target.closest("button");
      if (!button) { return; }
      var item = button.closest("li");
      if (button.classList.contains("sd-up") && item && item.previousElementSibling) {
        item.parentNode.insertBefore(item, item.previousElementSibling);
      } else if (button.classList.contains("sd-down") && item && item.nextElementSibling) {
        item.parentNode.insertBefore(item.nextElementSibling, item);
      } else if (button.classList.contains("sd-columns-apply")) {
        var chosen = Array.from(menu.querySelectorAll("input[type=checkbox]:checked"))
          .map(function (box) { return box.value; });
        var params = currentParams();
        if (chosen.length) { params.set("cols", chosen.join(",")); } else { params.delete("cols"); }
        window.location.assign(listUrl(params));
      }
    });
  });
  document.querySelectorAll(".sd-views-menu .sd-view-save").forEach(function (item) {
    item.addEventListener("click", function (event) { event.stopPropagation(); });
  });

  // -- selection and the bulk bar ---------------------------------------------------------
  var bulkBar = document.querySelector(".sd-bulk-bar");
  function selected() {
    return Array.from(document.querySelectorAll(".sd-row-check:checked"))
      .map(function (box) { return box.value; });
  }
  function refreshBar() {
    if (!bulkBar) { return; }
    var ids = selected();
    bulkBar.hidden = ids.length === 0;
    var label = bulkBar.querySelector(".sd-bulk-count");
    label.textContent = label.getAttribute("data-template").replace("__N__", ids.length);
    document.querySelectorAll(".sd-row").forEach(function (row) {
      var box = row.querySelector(".sd-row-check");
      row.classList.toggle("sd-selected", !!(box && box.checked));
    });
  }
  document.addEventListener("change", function (event) {
    if (event.target.classList.contains("sd-check-all")) {
      document.querySelectorAll(".sd-row-check").forEach(function (box) {
        box.checked = event.target.checked;
      });
    }
    if (event.target.classList.contains("sd-row-check") ||
        event.target.classList.contains("sd-check-all")) { refreshBar(); }
  });
  document.querySelectorAll("form.sd-bulk-action").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      var ids = selected();
      var message = form.getAttribute("data-confirm");
      if (!ids.length || (message && !window.confirm(message))) {
        event.preventDefault();
        return;
      }
      form.querySelectorAll("input[name=rowid]").forEach(function (old) { old.remove(); });
      ids.forEach(function (id) {
        var input = document.createElement("input");
        input.type = "hidden"; input.name = "rowid"; input.value = id;
        form.appendChild(input);
      });
    });
  });
  document.querySelectorAll("select.sd-bulk-field").forEach(function (select) {
    select.addEventListener("change", function () {
      var holder = select.parentNode.querySelector(".sd-bulk-value");
      holder.innerHTML = "";
      if (!select.value) { return; }
      fetch(select.getAttribute("data-url").replace("__F__", encodeURIComponent(select.value)),
            { credentials: "same-origin" })
        .then(function (response) { return response.text(); })
        .then(function (html) {
          holder.innerHTML = html;
          initPickers(holder);
        });
    });
  });

  initPickers(document);
  refreshBar();
})(window.jQuery);
