/* Demo bank page: its own "Chat with us" buttons open the embedded widget (page API). */
(function () {
  "use strict";
  ["open-chat", "open-chat-2"].forEach(function (id) {
    var button = document.getElementById(id);
    if (!button) return;
    button.addEventListener("click", function () {
      if (window.HubWebchat) window.HubWebchat.open();
    });
  });
})();
