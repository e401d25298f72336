"""The reporting backend on django-oscar's order history: settings of the Oscar example.

Oscar keeps each order's history in ``order_orderstatuschange`` (``order_id``,
``old_status``, ``new_status``, ``date_created``) next to a denormalised
``order.status`` that ``Order.set_status()`` maintains. This project installs the
Oscar apps that orders need, declares that history as ``REPORTING_SOURCE``, and
adds the index the declaration needs (``oscar_shop/migrations``). The tests in
``tests/oscar/`` run under these settings (``make test`` runs them).
"""

from __future__ import annotations

from oscar.defaults import *  # noqa: F403

from demo_project.settings import *  # noqa: F403
from demo_project.settings import DATABASES, INSTALLED_APPS

# The Oscar apps an order needs (its lines, addresses, products, partners,
# vouchers and offers), without the storefront and its search.
INSTALLED_APPS = [
    # Not this repository's example shop: the reporting app works without it.
    *(app for app in INSTALLED_APPS if app != "examples.shop"),
    "django.contrib.sites",
    "django.contrib.flatpages",
    "oscar.config.Shop",
    "oscar.apps.analytics.apps.AnalyticsConfig",
    "oscar.apps.checkout.apps.CheckoutConfig",
    "oscar.apps.address.apps.AddressConfig",
    "oscar.apps.shipping.apps.ShippingConfig",
    "oscar.apps.catalogue.apps.CatalogueConfig",
    "oscar.apps.catalogue.reviews.apps.CatalogueReviewsConfig",
    "oscar.apps.communication.apps.CommunicationConfig",
    "oscar.apps.partner.apps.PartnerConfig",
    "oscar.apps.basket.apps.BasketConfig",
    "oscar.apps.payment.apps.PaymentConfig",
    "oscar.apps.offer.apps.OfferConfig",
    "oscar.apps.order.apps.OrderConfig",
    "oscar.apps.customer.apps.CustomerConfig",
    "oscar.apps.search.apps.SearchConfig",
    "oscar.apps.voucher.apps.VoucherConfig",
    "oscar.apps.wishlists.apps.WishlistsConfig",
    "oscar.apps.dashboard.apps.DashboardConfig",
    "oscar.apps.dashboard.reports.apps.ReportsDashboardConfig",
    "oscar.apps.dashboard.users.apps.UsersDashboardConfig",
    "oscar.apps.dashboard.orders.apps.OrdersDashboardConfig",
    "oscar.apps.dashboard.catalogue.apps.CatalogueDashboardConfig",
    "oscar.apps.dashboard.offers.apps.OffersDashboardConfig",
    "oscar.apps.dashboard.partners.apps.PartnersDashboardConfig",
    "oscar.apps.dashboard.pages.apps.PagesDashboardConfig",
    "oscar.apps.dashboard.ranges.apps.RangesDashboardConfig",
    "oscar.apps.dashboard.reviews.apps.ReviewsDashboardConfig",
    "oscar.apps.dashboard.vouchers.apps.VouchersDashboardConfig",
    "oscar.apps.dashboard.communications.apps.CommunicationsDashboardConfig",
    "oscar.apps.dashboard.shipping.apps.ShippingDashboardConfig",
    "widget_tweaks",
    "haystack",
    "treebeard",
    "django_tables2",
    "examples.oscar_shop",
]
SITE_ID = 1
HAYSTACK_CONNECTIONS = {"default": {"ENGINE": "haystack.backends.simple_backend.SimpleEngine"}}

# Oscar's statuses are the shop's own; these are its documented example pipeline.
OSCAR_INITIAL_ORDER_STATUS = "Pending"
OSCAR_ORDER_STATUS_PIPELINE = {
    "Pending": ("Being processed", "Cancelled"),
    "Being processed": ("Complete", "Cancelled"),
    "Cancelled": (),
    "Complete": (),
}

REPORTING_SOURCE = {
    "history": "order.OrderStatusChange",
    "key": "order_id",
    "latest_by": ["-date_created", "-id"],
    "status": "new_status",
    "statuses": ["Pending", "Being processed", "Complete", "Cancelled"],
    "parent": "order.Order",
    "parent_key": "id",
    "parent_created": "date_placed",
    # Shown with each order's latest change: the status it changed from.
    "columns": ["old_status"],
}

# A test database of its own, next to the main suite's.
DATABASES["default"]["TEST"] = {"NAME": "test_reporting_oscar"}
