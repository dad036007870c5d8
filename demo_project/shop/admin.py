from django.contrib import admin

from .models import Order, Product


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["name", "price"]
    search_fields = ["name"]


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["id", "product", "quantity", "email", "created_at", "receipt_sent_at", "receipt_job_id"]
    list_filter = ["product", "created_at"]
    search_fields = ["email"]
    list_select_related = ["product"]
    readonly_fields = ["created_at", "receipt_sent_at", "receipt_job_id"]
