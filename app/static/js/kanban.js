/* Kanban (看板): drag a card to another column with a mouse, a finger or a pen (pointer
   events), or pick the column in the card's "move to" list. The server moves the record
   through the record service; when it refuses, the card goes back and its reason is shown. */
(function () {
  "use strict";
  var board = document.querySelector(".sd-kanban");
  if (!board) { return; }
  var status = document.querySelector(".sd-kanban-status");
  var drag = null;
  var THRESHOLD = 6;

  function say(text, ok) {
    if (!status) { return; }
    status.hidden = false;
    status.className = "sd-kanban-status alert " + (ok ? "alert-success" : "alert-danger");
    status.textContent = text;
  }

  function columnAt(x, y) {
    var el = document.elementFromPoint(x, y);
    return el ? el.closest(".sd-column") : null;
  }

  function allowed(card, column) {
    var targets = card.getAttribute("data-targets");
    if (targets === null) { return true; }  // no workflow: any column
    return (" " + targets + " ").indexOf(" " + column.getAttribute("data-key") + " ") !== -1;
  }

  function mark(card, on) {
    Array.prototype.forEach.call(board.querySelectorAll(".sd-column"), function (col) {
      col.classList.remove("sd-drop-ok", "sd-drop-no", "sd-drop-target");
      if (on && col !== card.closest(".sd-column")) {
        col.classList.add(allowed(card, col) ? "sd-drop-ok" : "sd-drop-no");
      }
    });
  }

  function recount() {
    Array.prototype.forEach.call(board.querySelectorAll(".sd-column"), function (col) {
      var badge = col.querySelector(".sd-column-count");
      var shown = col.querySelectorAll(".sd-card").length;
      var more = parseInt(col.getAttribute("data-more") || "0", 10);
      if (badge) { badge.textContent = String(shown + more); }
    });
  }

  function send(card, column, comment) {
    var home = { parent: card.parentNode, next: card.nextSibling };
    column.querySelector(".sd-cards").insertBefore(card, column.querySelector(".sd-cards").firstChild);
    card.classList.add("sd-saving");
    recount();
    var body = { id: card.getAttribute("data-id"), to: column.getAttribute("data-key"),
                 version: card.getAttribute("data-version") };
    if (comment) { body.comment = comment; }
    function back(message) {
      home.parent.insertBefore(card, home.next);
      card.classList.remove("sd-saving");
      recount();
      say(message || board.getAttribute("data-error-text"), false);
    }
    fetch(board.getAttribute("data-move-url"), {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return { ok: false }; });
    }).then(function (answer) {
      if (answer.ok) {
        card.classList.remove("sd-saving");
        // A step that waits for an approval lands in its pending state, not the column dropped on.
        var actual = board.querySelector('.sd-column[data-key="' + answer.state + '"]');
        if (actual && actual !== column) {
          actual.querySelector(".sd-cards").insertBefore(card, actual.querySelector(".sd-cards").firstChild);
          column = actual;
          recount();
        }
        card.setAttribute("data-version", answer.card.version);
        if (answer.card.targets !== null && answer.card.targets !== undefined) {
          card.setAttribute("data-targets", answer.card.targets.join(" "));
        }
        updateSelect(card, column);
        var label = column.querySelector(".sd-column-title").textContent;
        say(board.getAttribute("data-moved-text").replace("{column}", label), true);
        return;
      }
      if (answer.needs_comment && !comment) {
        var given = window.prompt(answer.message || board.getAttribute("data-comment-text"));
        home.parent.insertBefore(card, home.next);
        card.classList.remove("sd-saving");
        if (given && given.trim()) { send(card, column, given.trim()); return; }
        recount();
        say(answer.message, false);
        return;
      }
      back(answer.message);
    }).catch(function () { back(null); });
  }

  function updateSelect(card, column) {
    var select = card.querySelector(".sd-card-move select");
    if (!select) { return; }
    var key = column.getAttribute("data-key");
    select.innerHTML = "";
    var first = document.createElement("option");
    first.value = "";
    first.textContent = select.getAttribute("data-placeholder") || "";
    select.appendChild(first);
    Array.prototype.forEach.call(board.querySelectorAll(".sd-column"), function (col) {
      if (col.getAttribute("data-key") === key) { return; }
      var option = document.createElement("option");
      option.value = col.getAttribute("data-key");
      option.textContent = col.querySelector(".sd-column-title").textContent;
      select.appendChild(option);
    });
    select.value = "";
  }

  function start(event, card) {
    drag = { card: card, x: event.clientX, y: event.clientY, id: event.pointerId, ghost: null,
             over: null };
  }

  function begin() {
    var rect = drag.card.getBoundingClientRect();
    drag.ghost = drag.card.cloneNode(true);
    drag.ghost.classList.add("sd-card-ghost");
    drag.ghost.style.width = rect.width + "px";
    drag.dx = drag.x - rect.left;
    drag.dy = drag.y - rect.top;
    document.body.appendChild(drag.ghost);
    drag.card.classList.add("sd-dragging");
    document.body.classList.add("sd-kanban-dragging");
    mark(drag.card, true);
    drag.timer = window.setInterval(autoscroll, 30);
  }

  // Near the board's left or right edge the board scrolls, also while the finger rests.
  function autoscroll() {
    if (!drag || !drag.ghost) { return; }
    var box = board.getBoundingClientRect();
    var before = board.scrollLeft;
    if (drag.lastX < box.left + 40) { board.scrollLeft -= 16; }
    else if (drag.lastX > box.right - 40) { board.scrollLeft += 16; }
    if (board.scrollLeft !== before) { hover(drag.lastX, drag.lastY); }
  }

  function hover(x, y) {
    var column = columnAt(x, y);
    if (drag.over && drag.over !== column) { drag.over.classList.remove("sd-drop-target"); }
    drag.over = column;
    if (column) { column.classList.add("sd-drop-target"); }
  }

  board.addEventListener("pointerdown", function (event) {
    if (event.button !== 0) { return; }
    var card = event.target.closest(".sd-card.sd-movable");
    if (!card || event.target.closest("select, .sd-card-move")) { return; }
    // A finger drags by the grip (the rest of the card scrolls the page); a mouse anywhere.
    if (event.pointerType !== "mouse" && !event.target.closest(".sd-card-grip")) { return; }
    start(event, card);
  });

  document.addEventListener("pointermove", function (event) {
    if (!drag || event.pointerId !== drag.id) { return; }
    if (!drag.ghost) {
      if (Math.abs(event.clientX - drag.x) + Math.abs(event.clientY - drag.y) < THRESHOLD) { return; }
      begin();
    }
    event.preventDefault();
    drag.ghost.style.left = (event.clientX - drag.dx) + "px";
    drag.ghost.style.top = (event.clientY - drag.dy) + "px";
    drag.lastX = event.clientX;
    drag.lastY = event.clientY;
    hover(event.clientX, event.clientY);
  });

  function finish(event, cancelled) {
    if (!drag || event.pointerId !== drag.id) { return; }
    var d = drag;
    drag = null;
    if (!d.ghost) { return; }  // a click, not a drag
    window.clearInterval(d.timer);
    d.ghost.remove();
    d.card.classList.remove("sd-dragging");
    document.body.classList.remove("sd-kanban-dragging");
    mark(d.card, false);
    var column = cancelled ? null : columnAt(event.clientX, event.clientY);
    if (column && column !== d.card.closest(".sd-column")) { send(d.card, column); }
    // the click that ends a mouse drag must not open the card's link
    function stop(e) { e.preventDefault(); }
    d.card.addEventListener("click", stop, true);
    window.setTimeout(function () { d.card.removeEventListener("click", stop, true); }, 0);
  }

  document.addEventListener("pointerup", function (event) { finish(event, false); });
  document.addEventListener("pointercancel", function (event) { finish(event, true); });

  // Links in a card are natively draggable: that drag would cancel ours (pointercancel).
  board.addEventListener("dragstart", function (event) {
    if (event.target.closest && event.target.closest(".sd-card")) { event.preventDefault(); }
  });

  board.addEventListener("change", function (event) {
    var select = event.target.closest(".sd-card-move select");
    if (!select || !select.value) { return; }
    var card = select.closest(".sd-card");
    var column = board.querySelector('.sd-column[data-key="' + select.value + '"]');
    if (column) { send(card, column); }
  });

  Array.prototype.forEach.call(board.querySelectorAll(".sd-column"), function (col) {
    var badge = col.querySelector(".sd-column-count");
    var shown = col.querySelectorAll(".sd-card").length;
    col.setAttribute("data-more", String(Math.max(0, parseInt(badge.textContent, 10) - shown)));
  });
  Array.prototype.forEach.call(board.querySelectorAll(".sd-card-move select"), function (select) {
    select.setAttribute("data-placeholder", select.options[0].textContent);
  });
}());
