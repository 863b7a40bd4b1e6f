import pandas as pd
import pytest

from features import NUMERIC, CATEGORICAL, add_features, build_model


def shipments(n: int = 4) -> pd.DataFrame:
    return pd.DataFrame({
        "shipment_id": [f"S{i}" for i in range(n)],
        "distance_km": [12.5, 300.0, 45.0, 800.0][:n],
        "parcels": [1, 4, 2, 0][:n],
        "weight_kg": [2.0, 10.0, None, 3.0][:n],
        "pickup_hour": [9, 17, 16, 8][:n],
        "weekend": [0, 1, 0, 0][:n],
        "warehouse": ["north", "south", "east", "west"][:n],
        "carrier": ["swift", "budget", "parcelco", "swift"][:n],
        "late": [0, 1, 1, 0][:n],
    })


def test_columns_in_model_order():
    assert list(add_features(shipments()).columns) == NUMERIC + CATEGORICAL


def test_weight_per_parcel():
    frame = add_features(shipments())
    assert frame["weight_per_parcel"].iloc[1] == pytest.approx(2.5)
    assert pd.isna(frame["weight_per_parcel"].iloc[2])  # missing weight stays missing
    assert frame["weight_per_parcel"].iloc[3] == pytest.approx(3.0)  # no division by zero parcels


def test_evening_pickup_from_four_pm():
    assert add_features(shipments())["evening_pickup"].tolist() == [0.0, 1.0, 1.0, 0.0]


def test_model_scores_raw_shipments():
    frame = pd.concat([shipments()] * 5, ignore_index=True)
    model = build_model(random_state=0).fit(add_features(frame), frame["late"])
    scores = model.predict_proba(add_features(frame))[:, 1]
    assert ((scores >= 0) & (scores <= 1)).all()
