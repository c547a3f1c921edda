// The checkout's card field: Stripe.js confirms the SetupIntent with the card in the
// browser (the card never reaches this server), then the form posts to complete it.
(function () {
  var form = document.getElementById("checkout-form");
  if (!form || typeof Stripe === "undefined") {
    var err = document.getElementById("card-error");
    if (err) err.textContent = "The payment form could not load; try again later.";
    return;
  }
  var stripe = Stripe(form.getAttribute("data-key"));
  var card = stripe.elements().create("card");
  card.mount("#card-element");
  var done = false;
  form.addEventListener("submit", function (ev) {
    if (done) return;
    ev.preventDefault();
    var button = document.getElementById("pay");
    button.disabled = true;
    stripe.confirmCardSetup(form.getAttribute("data-client-secret"), {
      payment_method: { card: card },
    }).then(function (result) {
      if (result.error) {
        document.getElementById("card-error").textContent =
          (result.error && result.error.message) || "The card was refused.";
        button.disabled = false;
        return;
      }
      done = true;
      form.submit();
    });
  });
})();
