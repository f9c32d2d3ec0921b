"""From a decoded device message to a committed reading, events and alerts (see :mod:`.runner`)."""
