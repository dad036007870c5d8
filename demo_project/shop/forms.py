from django import forms

from .models import Order, Product


class OrderForm(forms.ModelForm):
    product = forms.ModelChoiceField(queryset=Product.objects.all(), empty_label=None)

    class Meta:
        model = Order
        fields = ["product", "quantity", "email"]
        widgets = {"quantity": forms.NumberInput(attrs={"min": 1, "max": 99})}


class ReportForm(forms.Form):
    days = forms.IntegerField(min_value=1, max_value=365, initial=7)
