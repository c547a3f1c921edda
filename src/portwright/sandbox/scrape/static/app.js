// scrape-js: renders the product or the listing from the JSON API into #app.
// The markup mirrors the static site's, so one set of extraction rules fits both.
(function () {
  "use strict";
  var app = document.getElementById("app");
  if (!app) { return; }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function renderProduct(p) {
    var article = el("article", { "class": "product", "data-product-id": String(p.id) });
    article.appendChild(el("h1", { "class": "title" }, p.title));
    article.appendChild(el("span", {
      "class": "price", "data-amount": p.price, "data-currency": p.currency
    }, p.price_text));
    article.appendChild(el("span", {
      "class": "stock " + (p.in_stock ? "in-stock" : "out-of-stock")
    }, p.in_stock ? "In stock" : "Out of stock"));
    article.appendChild(el("span", {
      "class": "rating", "data-rating": String(p.rating)
    }, p.rating + " / 5"));
    var tags = el("ul", { "class": "tags" });
    p.tags.forEach(function (t) { tags.appendChild(el("li", {}, t)); });
    article.appendChild(tags);
    var specs = el("table", { "class": "specs" });
    Object.keys(p.specs).forEach(function (name) {
      var row = el("tr", {});
      row.appendChild(el("th", {}, name));
      row.appendChild(el("td", {}, p.specs[name]));
      specs.appendChild(row);
    });
    article.appendChild(specs);
    article.appendChild(el("p", { "class": "description" }, p.description));
    article.appendChild(el("a", { "class": "back", "href": "/catalog" }, "Back to catalogue"));
    app.appendChild(article);
  }

  function renderListing(data) {
    app.appendChild(el("h1", { "class": "catalog-title" }, "Catalogue"));
    var list = el("ul", {
      "class": "products", "data-page": String(data.page), "data-pages": String(data.pages)
    });
    data.products.forEach(function (p) {
      var li = el("li", { "class": "product-card", "data-product-id": String(p.id) });
      li.appendChild(el("a", { "class": "product-link", "href": "/product/" + p.id }, p.title));
      li.appendChild(document.createTextNode(" "));
      li.appendChild(el("span", { "class": "price" }, p.price_text));
      list.appendChild(li);
    });
    app.appendChild(list);
    var nav = el("nav", { "class": "pagination" });
    if (data.page > 1) {
      nav.appendChild(el("a", {
        "class": "prev", "rel": "prev", "href": "/catalog?page=" + (data.page - 1)
      }, "Previous"));
    }
    nav.appendChild(el("span", { "class": "current" }, "Page " + data.page + " of " + data.pages));
    if (data.page < data.pages) {
      nav.appendChild(el("a", {
        "class": "next", "rel": "next", "href": "/catalog?page=" + (data.page + 1)
      }, "Next"));
    }
    app.appendChild(nav);
  }

  var pid = app.getAttribute("data-product-id");
  var page = app.getAttribute("data-page");
  var url = pid ? "/api/product/" + pid : "/api/catalog?page=" + page;
  var delay = parseInt(app.getAttribute("data-render-delay-ms") || "0", 10);
  fetch(url, { headers: { "Accept": "application/json" } })
    .then(function (r) {
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      return r.json();
    })
    .then(function (data) {
      setTimeout(function () {
        if (pid) { renderProduct(data); } else { renderListing(data); }
        app.setAttribute("data-state", "ready");
      }, delay);
    })
    .catch(function (err) {
      app.appendChild(el("p", { "class": "error" }, String(err)));
      app.setAttribute("data-state", "error");
    });
})();
