// Drag and drop on the board page, as an enhancement of the Move forms:
// dropping a card on a column picks that column in the card's own form
// and submits it, so the server applies the same rules as for the button.
// Served from /settings/static (the page's CSP allows no inline script).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var board = document.querySelector(".board[data-draggable]");
  if (!board) return;
  board.querySelectorAll("li.kcard[draggable]").forEach(function (li) {
    li.addEventListener("dragstart", function (e) {
      e.dataTransfer.setData("text/plain", li.dataset.card);
      e.dataTransfer.effectAllowed = "move";
      li.classList.add("dragging");
    });
    li.addEventListener("dragend", function () { li.classList.remove("dragging"); });
  });
  board.querySelectorAll("section.column").forEach(function (col) {
    col.addEventListener("dragover", function (e) { e.preventDefault(); col.classList.add("drop"); });
    col.addEventListener("dragleave", function () { col.classList.remove("drop"); });
    col.addEventListener("drop", function (e) {
      e.preventDefault();
      col.classList.remove("drop");
      var li = document.getElementById(e.dataTransfer.getData("text/plain"));
      var form = li && li.querySelector("form.move");
      if (!form || !board.contains(li)) return;
      form.elements.column.value = col.dataset.column;
      form.submit();
    });
  });
});
