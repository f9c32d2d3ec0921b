"""Device simulator: bracelets walking real streets, reporting over OsmAnd HTTP, with a ground-truth log.

``streets`` holds the packaged OpenStreetMap walking graph (© OpenStreetMap contributors, ODbL),
``bracelet`` the pure model of one wearer and device, ``fleet`` the network driver.
"""
