/* The consent signing page's one script (docs/portal.md "Signed consents"; fhir_server/portal/esign.py).
 *
 * With JavaScript on, it asks NCALayer on the person's own computer to sign the form the page shows:
 * NCALayer's WebSocket (the page's data-url; wss://127.0.0.1:13579 by default), the
 * kz.gov.pki.knca.commonUtils module's createCMSSignatureFromBase64 with the arguments
 * [key store type, "SIGNATURE" (the signing key, not the authentication key), the form's base64, true (an
 * attached CMS)]. NCALayer answers {"code": "200", "responseObject": <base64 CMS>}; the script puts the CMS
 * into the paste field and submits the same form (the same CSRF token, the same checks on the server). It
 * skips NCALayer's greeting {"result": {"version": ...}} and its "--heartbeat--". Any other answer, or no
 * NCALayer at all, is said in the page's language and the paste form stays as it is without JavaScript.
 * No inline script, no other connection: the page's CSP allows this file and NCALayer's origin only. */
(function () {
  "use strict";
  var box = document.getElementById("ncalayer");
  var button = document.getElementById("ncalayer-sign");
  var status = document.getElementById("ncalayer-status");
  var form = document.getElementById("sign-form");
  var field = document.getElementById("cms");
  var data = document.getElementById("form-base64");
  if (!box || !button || !status || !form || !field || !data || typeof WebSocket === "undefined") {
    return;
  }
  box.hidden = false;

  function say(key, extra) {
    status.textContent = (box.getAttribute("data-msg-" + key) || "") + (extra ? " " + extra : "");
  }

  button.addEventListener("click", function () {
    var finished = false;
    var socket;
    button.disabled = true;
    say("connecting");

    function fail(key, extra) {
      if (finished) {
        return;
      }
      finished = true;
      button.disabled = false;
      say(key, extra);
      try {
        socket.close();
      } catch (ignored) { /* already closed */ }
    }

    try {
      socket = new WebSocket(box.getAttribute("data-url"));
    } catch (refused) {
      finished = true;
      button.disabled = false;
      say("unreachable");
      return;
    }
    socket.onopen = function () {
      say("waiting");
      socket.send(JSON.stringify({
        module: "kz.gov.pki.knca.commonUtils",
        method: "createCMSSignatureFromBase64",
        args: ["PKCS12", "SIGNATURE", data.value.replace(/\s+/g, ""), true]
      }));
    };
    socket.onmessage = function (event) {
      var answer;
      if (finished || event.data === "--heartbeat--") {
        return;
      }
      try {
        answer = JSON.parse(event.data);
      } catch (notJson) {
        return;
      }
      if (answer && answer.result && answer.result.version) {
        return; /* NCALayer's greeting */
      }
      if (answer && String(answer.code) === "200" && typeof answer.responseObject === "string" &&
          answer.responseObject) {
        finished = true;
        socket.close();
        field.value = answer.responseObject;
        say("done");
        form.submit();
        return;
      }
      if (answer && answer.message === "action.canceled") {
        fail("cancelled");
      } else {
        fail("refused", answer && answer.message ? String(answer.message) : "");
      }
    };
    socket.onerror = function () {
      fail("unreachable");
    };
    socket.onclose = function () {
      fail("unreachable");
    };
  });
}());
