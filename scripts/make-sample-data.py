#!/usr/bin/env python3
"""scripts/make-sample-data.py - writes the sample dataset in data/ (a clothing shop).

Deterministic (fixed seed): running it again writes the same files. `make run` imports them on a
node's first start. Columns are those `trastenda-cli import` reads (docs/CLI.md).
"""
import csv
import os
import random

random.seed(20261127)
HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data")

LOCATIONS = [
    # id, name, lat, lon, priority, channels
    ("WH-CORUNA", "Almacén A Coruña (Arteixo)", "43.304622", "-8.509812", 0, "web;store"),
    ("WH-SANTIAGO", "Almacén Santiago de Compostela", "42.878213", "-8.544844", 1, "web"),
    ("WH-VIGO", "Almacén Vigo", "42.240599", "-8.720727", 1, "web"),
    ("WH-LUGO", "Almacén Lugo", "43.012087", "-7.555851", 2, "web"),
    ("WH-MADRID", "Almacén Madrid (Coslada)", "40.423740", "-3.561390", 0, "web"),
    ("WH-BARCELONA", "Almacén Barcelona (El Prat)", "41.326290", "2.095080", 1, "web"),
    ("ST-OURENSE", "Tienda Ourense", "42.335998", "-7.863881", 3, "store"),
    ("ST-SEVILLA", "Tienda Sevilla", "37.389092", "-5.984459", 3, "store"),
]

PRODUCTS = [
    "Camiseta básica", "Camiseta rayas", "Polo piqué", "Camisa Oxford", "Camisa lino",
    "Sudadera capucha", "Jersey punto", "Cárdigan", "Chaqueta vaquera", "Cazadora",
    "Abrigo lana", "Parka", "Chubasquero", "Vaquero recto", "Vaquero slim", "Chino",
    "Pantalón lino", "Bermuda", "Falda midi", "Vestido camisero", "Vestido punto",
    "Mono", "Leggings", "Pijama", "Calcetines pack", "Bufanda", "Gorro", "Zapatilla lona",
    "Bota piel", "Cinturón",
]
SIZES = ["XS", "S", "M", "L", "XL", "XXL"]
COLORS = ["BLANCO", "NEGRO", "MARINO", "GRIS", "ROJO", "VERDE", "BEIGE", "AZUL",
          "BURDEOS", "MOSTAZA", "CAMEL", "ROSA", "OLIVA", "CRUDO"]


def main():
    os.makedirs(HERE, exist_ok=True)
    with open(os.path.join(HERE, "locations.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["id", "name", "lat", "lon", "priority", "channels"])
        for row in LOCATIONS:
            w.writerow(row)
    skus = []
    with open(os.path.join(HERE, "skus.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["id", "name", "reorder_point", "reorder_qty", "lead_days", "safety_stock"])
        for p, product in enumerate(PRODUCTS):
            for color in random.sample(COLORS, 10):
                for size in SIZES:
                    sku = "P%03d-%s-%s" % (p + 1, color[:3], size)
                    skus.append(sku)
                    w.writerow([sku, "%s %s %s" % (product, color.lower(), size),
                                random.choice([5, 10, 20]), random.choice([50, 100, 200]),
                                random.choice([7, 14, 21]), random.choice([0, 2, 5])])
    with open(os.path.join(HERE, "stock.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["sku", "location", "on_hand"])
        ids = [l[0] for l in LOCATIONS]
        for sku in skus:
            for loc in random.sample(ids, random.randint(2, 4)):
                w.writerow([sku, loc, random.choice([0, 3, 8, 15, 40, 120, 300])])


if __name__ == "__main__":
    main()
