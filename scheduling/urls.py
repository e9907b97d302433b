"""HTTP routes of scheduling (included from hub/urls.py): the hours API and the page."""

from django.urls import URLPattern, path

from scheduling import views

urlpatterns: list[URLPattern] = [
    path("api/hours/", views.api_hours),
    path("api/hours/schedule/", views.api_schedule),
    path("api/hours/special-days/", views.api_special_days),
    path("api/hours/special-days/<int:special_day_id>/", views.api_special_day),
    path("api/hours/holidays/", views.api_holidays_preview),
    path("api/hours/holidays/countries/", views.api_holiday_countries),
    path("api/hours/holidays/import/", views.api_holidays_import),
    path("api/hours/preview/", views.api_preview),
    path("coordinator/hours/", views.hours_page, name="hours-page"),
]
