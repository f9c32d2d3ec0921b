"""Device simulator: bracelets walking real streets, reporting in every device protocol, with a truth log.

``streets`` holds the packaged OpenStreetMap walking graph (© OpenStreetMap contributors, ODbL),
``bracelet`` the pure model of one wearer and device, ``speakers`` encodes its reports in each protocol
(OsmAnd, watch, GT06, H02, MQTT JSON), ``links`` keeps each device's connection, ``fleet`` drives them.
"""
