"""The markup shared by the scrape sites: one layout, one product page, one listing.

Selectors are stable across sites so one set of extraction rules works on the
static, guarded and captcha sites (and on the JS site once its script ran):
`article.product[data-product-id]`, `h1.title`, `span.price`, `ul.tags li`,
`table.specs tr` (`th` name, `td` value), `p.description`; listings have
`li.product-card a.product-link` and `nav.pagination a.prev / a.next`.
"""

from __future__ import annotations

from html import escape

from portwright.sandbox.scrape._catalog import Product

__all__ = ["blocked_page", "layout", "listing_html", "product_html"]


def layout(title: str, body: str, *, head: str = "") -> str:
    """A whole HTML document around `body`."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title>{head}</head><body>{body}</body></html>"
    )


def product_html(product: Product) -> str:
    """The product article, as the static site serves it and the JS site renders it."""
    tags = "".join(f"<li>{escape(t)}</li>" for t in product.tags)
    specs = "".join(
        f"<tr><th>{escape(name)}</th><td>{escape(value)}</td></tr>" for name, value in product.specs
    )
    stock = "in-stock" if product.in_stock else "out-of-stock"
    return (
        f'<article class="product" data-product-id="{product.id}">'
        f'<h1 class="title">{escape(product.title)}</h1>'
        f'<span class="price" data-amount="{product.amount}" '
        f'data-currency="{product.currency}">{escape(product.price_text)}</span>'
        f'<span class="stock {stock}">{"In stock" if product.in_stock else "Out of stock"}</span>'
        f'<span class="rating" data-rating="{product.rating}">{product.rating} / 5</span>'
        f'<ul class="tags">{tags}</ul>'
        f'<table class="specs">{specs}</table>'
        f'<p class="description">{escape(product.description)}</p>'
        '<a class="back" href="/catalog">Back to catalogue</a>'
        "</article>"
    )


def listing_html(products: list[Product], page: int, pages: int) -> str:
    """One catalogue page with product cards and prev/next links."""
    cards = "".join(
        f'<li class="product-card" data-product-id="{p.id}">'
        f'<a class="product-link" href="/product/{p.id}">{escape(p.title)}</a> '
        f'<span class="price">{escape(p.price_text)}</span></li>'
        for p in products
    )
    nav = []
    if page > 1:
        nav.append(f'<a class="prev" rel="prev" href="/catalog?page={page - 1}">Previous</a>')
    nav.append(f'<span class="current">Page {page} of {pages}</span>')
    if page < pages:
        nav.append(f'<a class="next" rel="next" href="/catalog?page={page + 1}">Next</a>')
    return (
        f'<h1 class="catalog-title">Catalogue</h1>'
        f'<ul class="products" data-page="{page}" data-pages="{pages}">{cards}</ul>'
        f'<nav class="pagination">{"".join(nav)}</nav>'
    )


def blocked_page(reason: str) -> str:
    """The block page a refused client sees (`#blocked`)."""
    body = (
        f'<h1 id="blocked" data-reason="{escape(reason)}">Access denied</h1>'
        "<p>This page could not be shown to your client.</p>"
    )
    return layout("Access denied", body)
