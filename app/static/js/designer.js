/* Designer pages: show only the field options of the chosen type; check typed confirmations. */
(function () {
  "use strict";
  function showForType() {
    var select = document.querySelector(".sd-field-form .sd-type");
    if (!select) { return; }
    var type = select.value;
    document.querySelectorAll(".sd-field-form [data-types]").forEach(function (group) {
      var types = group.getAttribute("data-types").split(" ");
      group.style.display = types.indexOf(type) >= 0 ? "" : "none";
    });
  }
  function checkConfirmations() {
    var inputs = document.querySelectorAll(".sd-confirm");
    var button = document.querySelector(".sd-apply");
    if (!button || !inputs.length || button.hasAttribute("data-errors")) { return; }
    var ok = true;
    inputs.forEach(function (input) {
      var good = input.value.trim() === input.getAttribute("data-expected");
      input.parentNode.classList.toggle("has-success", good);
      ok = ok && good;
    });
    button.disabled = !ok;
  }
  function filterPaths() {
    document.querySelectorAll(".sd-row-form").forEach(function (form) {
      var entity = form.querySelector("[name=entity]").value;
      form.querySelectorAll("[name=path] optgroup").forEach(function (group) {
        group.style.display = group.getAttribute("data-entity") === entity ? "" : "none";
        group.disabled = group.getAttribute("data-entity") !== entity;
      });
      var literal = form.querySelector("[name=literal]");
      if (literal) {
        literal.style.display = form.querySelector("[name=value]").value === "_literal" ? "" : "none";
      }
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var select = document.querySelector(".sd-field-form .sd-type");
    if (select) { select.addEventListener("change", showForType); showForType(); }
    document.querySelectorAll(".sd-confirm").forEach(function (input) {
      input.addEventListener("input", checkConfirmations);
    });
    checkConfirmations();
    document.querySelectorAll(".sd-row-form select").forEach(function (el) {
      el.addEventListener("change", filterPaths);
    });
    filterPaths();
  });
}());
