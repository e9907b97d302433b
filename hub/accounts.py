"""Account services: staff users and their roles."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from hub.roles import Role, role_groups_ensure


def staff_user_ensure(
    *, username: str, password: str, role: Role, first_name: str = "", last_name: str = ""
) -> AbstractBaseUser:
    """Create (or bring back in line) a staff user with exactly one role group."""
    User = get_user_model()
    with transaction.atomic():
        groups = role_groups_ensure()
        user, created = User.objects.get_or_create(
            username=username, defaults={"first_name": first_name, "last_name": last_name}
        )
        if created or not user.check_password(password):
            user.set_password(password)
        user.first_name = first_name or user.first_name
        user.last_name = last_name or user.last_name
        user.is_active = True
        # Admins and coordinators may use the Django admin for plain record editing (query
        # types, reasons, skills); what each may edit there follows their permissions.
        user.is_staff = role in (Role.ADMIN, Role.COORDINATOR)
        user.save()
        user.groups.set([groups[role]])
    return user
