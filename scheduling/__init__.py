"""Scheduling: the service's opening hours, special days and the out-of-hours autoreply."""
