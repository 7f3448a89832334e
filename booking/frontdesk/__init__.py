"""Front desk pages: the AI bookings list and the "needs attention" queue (retry, resolve)."""
