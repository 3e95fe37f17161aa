"""Rekognition's names for what the label pack's two models detect, as data.

Only labels the models really detect are here: the COCO classes of the SSD detector (boxes)
and a chosen set of ImageNet classes of the classifier (whole image), each mapped to the
Rekognition label it is, plus the ancestors those labels name. ``Parents`` lists every
ancestor (Rekognition's hierarchy flattened, as DetectLabels answers it), so a parent's own
parents are always among its child's. Aliases and categories follow Rekognition's where it
publishes one for that label; a label this table cannot vouch for has none. ImageNet classes
are named by their first synonym, resolved to indices against the model's own class list
when the pack is made (a name missing there fails the conversion).
"""

from __future__ import annotations

from types import MappingProxyType

VEHICLES = "Vehicles and Automotive"
ANIMALS = "Animals and Pets"
FOOD = "Food and Beverage"
FURNITURE = "Furniture and Furnishings"
TECH = "Technology and Computing"
KITCHEN = "Kitchen and Dining"
HOME = "Home and Indoors"
SPORTS = "Sports"
TOYS = "Toys and Gaming"
PERSON = "Person Description"
EVERYDAY = "Everyday Objects"
PLANTS = "Plants and Flowers"
APPAREL = "Apparel and Accessories"
TRANSPORT = "Transport and Logistics"

_TR = ("Transportation", "Vehicle")
_MAMMAL = ("Animal", "Mammal")
_WILD = ("Animal", "Mammal", "Wildlife")
_FRUIT = ("Food", "Fruit", "Produce")
_VEG = ("Food", "Produce", "Vegetable")
_HW = ("Computer Hardware", "Electronics", "Hardware")

# name: (parents, aliases, categories)
Entry = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]
LABELS: MappingProxyType[str, Entry] = MappingProxyType({
    # Ancestors named by the labels below (labels themselves, at their child's confidence).
    "Transportation": ((), (), (TRANSPORT,)),
    "Vehicle": (("Transportation",), (), (VEHICLES,)),
    "Aircraft": (_TR, (), (VEHICLES,)),
    "Watercraft": (_TR, (), (VEHICLES,)),
    "Animal": ((), (), (ANIMALS,)),
    "Mammal": (("Animal",), (), (ANIMALS,)),
    "Pet": (("Animal",), (), (ANIMALS,)),
    "Canine": (_MAMMAL, (), (ANIMALS,)),
    "Wildlife": (("Animal",), (), (ANIMALS,)),
    "Livestock": (("Animal",), (), (ANIMALS,)),
    "Food": ((), (), (FOOD,)),
    "Fruit": (("Food",), (), (FOOD,)),
    "Produce": (("Food",), (), (FOOD,)),
    "Vegetable": (("Food", "Produce"), (), (FOOD,)),
    "Dessert": (("Food",), (), (FOOD,)),
    "Beverage": ((), ("Drink",), (FOOD,)),
    "Furniture": ((), (), (FURNITURE,)),
    "Table": (("Furniture",), (), (FURNITURE,)),
    "Electronics": ((), (), (TECH,)),
    "Hardware": (("Electronics",), (), (TECH,)),
    "Computer Hardware": (("Electronics", "Hardware"), (), (TECH,)),
    "Computer": (("Electronics",), (), (TECH,)),
    "Phone": (("Electronics",), (), (TECH,)),
    "Appliance": ((), (), (HOME,)),
    "Cutlery": ((), (), (KITCHEN,)),
    # What the detector's COCO classes are.
    "Person": ((), ("Human",), (PERSON,)),
    "Bicycle": (_TR, ("Bike",), (VEHICLES,)),
    "Car": (_TR, ("Automobile",), (VEHICLES,)),
    "Motorcycle": (_TR, ("Motorbike",), (VEHICLES,)),
    "Airplane": (("Aircraft", *_TR), ("Aeroplane",), (VEHICLES,)),
    "Bus": (_TR, (), (VEHICLES,)),
    "Train": (_TR, (), (VEHICLES,)),
    "Truck": (_TR, (), (VEHICLES,)),
    "Van": (_TR, (), (VEHICLES,)),  # Rekognition's Van (Transportation, Vehicle): no box
    "Boat": ((*_TR, "Watercraft"), (), (VEHICLES,)),
    "Traffic Light": ((), (), (TRANSPORT,)),  # no alias: "Light" was not Rekognition's
    "Fire Hydrant": ((), (), (EVERYDAY,)),
    "Stop Sign": ((), (), (TRANSPORT,)),
    "Parking Meter": ((), (), (TRANSPORT,)),
    "Bench": (("Furniture",), (), (FURNITURE,)),
    "Bird": (("Animal",), (), (ANIMALS,)),
    "Cat": ((*_MAMMAL, "Pet"), (), (ANIMALS,)),
    "Dog": (("Animal", "Canine", "Mammal", "Pet"), (), (ANIMALS,)),
    "Horse": (_MAMMAL, (), (ANIMALS,)),
    "Sheep": ((*_MAMMAL, "Livestock"), (), (ANIMALS,)),
    "Cow": ((*_MAMMAL, "Livestock"), (), (ANIMALS,)),
    "Elephant": (_WILD, (), (ANIMALS,)),
    "Bear": (_WILD, (), (ANIMALS,)),
    "Zebra": (_WILD, (), (ANIMALS,)),
    "Giraffe": (_WILD, (), (ANIMALS,)),
    "Backpack": ((), (), (APPAREL,)),
    "Umbrella": ((), (), (EVERYDAY,)),
    "Handbag": ((), ("Purse",), (APPAREL,)),
    "Tie": ((), (), (APPAREL,)),
    "Suitcase": ((), ("Luggage",), (TRANSPORT,)),
    "Frisbee": ((), (), (SPORTS,)),
    "Ski": ((), (), (SPORTS,)),
    "Snowboard": ((), (), (SPORTS,)),
    "Ball": ((), (), (SPORTS,)),
    "Kite": ((), (), (TOYS,)),
    "Baseball Bat": ((), (), (SPORTS,)),
    "Baseball Glove": ((), (), (SPORTS,)),
    "Skateboard": ((), (), (SPORTS,)),
    "Surfboard": ((), (), (SPORTS,)),
    "Racket": ((), (), (SPORTS,)),
    "Bottle": ((), (), (EVERYDAY,)),
    "Glass": ((), (), (KITCHEN,)),
    "Cup": ((), (), (KITCHEN,)),
    "Fork": (("Cutlery",), (), (KITCHEN,)),
    "Knife": (("Cutlery",), (), (KITCHEN,)),
    "Spoon": (("Cutlery",), (), (KITCHEN,)),
    "Bowl": ((), (), (KITCHEN,)),
    "Banana": (_FRUIT, (), (FOOD,)),
    "Apple": (_FRUIT, (), (FOOD,)),
    "Sandwich": (("Food",), (), (FOOD,)),
    "Orange": (_FRUIT, (), (FOOD,)),
    "Broccoli": (_VEG, (), (FOOD,)),
    "Carrot": (_VEG, (), (FOOD,)),
    "Hot Dog": (("Food",), (), (FOOD,)),
    "Pizza": (("Food",), (), (FOOD,)),
    "Donut": (("Dessert", "Food"), ("Doughnut",), (FOOD,)),
    "Cake": (("Dessert", "Food"), (), (FOOD,)),
    "Chair": (("Furniture",), (), (FURNITURE,)),
    "Couch": (("Furniture",), ("Sofa",), (FURNITURE,)),
    "Potted Plant": ((), (), (PLANTS,)),
    "Bed": (("Furniture",), (), (FURNITURE,)),
    "Dining Table": (("Furniture", "Table"), (), (FURNITURE,)),
    "Toilet": ((), (), (HOME,)),
    "TV": (("Electronics",), ("Television",), (TECH,)),
    "Laptop": (("Computer", "Electronics"), (), (TECH,)),
    "Mouse": (_HW, (), (TECH,)),
    "Remote Control": (("Electronics",), (), (TECH,)),
    "Computer Keyboard": (_HW, (), (TECH,)),
    "Mobile Phone": (("Electronics", "Phone"), ("Cell Phone",), (TECH,)),
    "Microwave": (("Appliance",), (), (HOME,)),
    "Oven": (("Appliance",), (), (HOME,)),
    "Toaster": (("Appliance",), (), (HOME,)),
    "Sink": ((), (), (HOME,)),
    "Refrigerator": (("Appliance",), ("Fridge",), (HOME,)),
    "Book": ((), (), (EVERYDAY,)),
    "Clock": ((), (), (EVERYDAY,)),
    "Vase": ((), (), (HOME,)),
    "Scissors": ((), (), (EVERYDAY,)),
    "Teddy Bear": ((), (), (TOYS,)),
    "Hair Dryer": (("Appliance",), ("Blow Dryer",), (HOME,)),
    "Toothbrush": ((), (), (EVERYDAY,)),
    # Classifier-only labels.
    "Coffee": (("Beverage",), (), (FOOD,)),
})

# The detector's class ids (TF object detection API's 90-id COCO scheme: 80 are used).
COCO: MappingProxyType[int, str] = MappingProxyType({
    1: "Person", 2: "Bicycle", 3: "Car", 4: "Motorcycle", 5: "Airplane", 6: "Bus", 7: "Train",
    8: "Truck", 9: "Boat", 10: "Traffic Light", 11: "Fire Hydrant", 13: "Stop Sign",
    14: "Parking Meter", 15: "Bench", 16: "Bird", 17: "Cat", 18: "Dog", 19: "Horse",
    20: "Sheep", 21: "Cow", 22: "Elephant", 23: "Bear", 24: "Zebra", 25: "Giraffe",
    27: "Backpack", 28: "Umbrella", 31: "Handbag", 32: "Tie", 33: "Suitcase", 34: "Frisbee",
    35: "Ski", 36: "Snowboard", 37: "Ball", 38: "Kite", 39: "Baseball Bat",
    40: "Baseball Glove", 41: "Skateboard", 42: "Surfboard", 43: "Racket", 44: "Bottle",
    46: "Glass", 47: "Cup", 48: "Fork", 49: "Knife", 50: "Spoon", 51: "Bowl", 52: "Banana",
    53: "Apple", 54: "Sandwich", 55: "Orange", 56: "Broccoli", 57: "Carrot", 58: "Hot Dog",
    59: "Pizza", 60: "Donut", 61: "Cake", 62: "Chair", 63: "Couch", 64: "Potted Plant",
    65: "Bed", 67: "Dining Table", 70: "Toilet", 72: "TV", 73: "Laptop", 74: "Mouse",
    75: "Remote Control", 76: "Computer Keyboard", 77: "Mobile Phone", 78: "Microwave",
    79: "Oven", 80: "Toaster", 81: "Sink", 82: "Refrigerator", 84: "Book", 85: "Clock",
    86: "Vase", 87: "Scissors", 88: "Teddy Bear", 89: "Hair Dryer", 90: "Toothbrush",
})

# ImageNet classes (first synonym as the model's class list spells it) -> label.
IMAGENET: MappingProxyType[str, str] = MappingProxyType({
    **dict.fromkeys(("tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"),
                    "Cat"),
    **dict.fromkeys(("sports car", "convertible", "cab", "racer", "limousine", "jeep",
                     "beach wagon"), "Car"),
    **dict.fromkeys(("minivan", "moving van"), "Van"),  # vans, as Rekognition names them
    **dict.fromkeys(("school bus", "trolleybus", "minibus"), "Bus"),
    **dict.fromkeys(("pickup", "trailer truck", "tow truck", "fire engine", "garbage truck"),
                    "Truck"),
    **dict.fromkeys(("mountain bike", "bicycle-built-for-two"), "Bicycle"),
    **dict.fromkeys(("coffee mug", "cup"), "Cup"),
    **dict.fromkeys(("soup bowl", "mixing bowl"), "Bowl"),
    **dict.fromkeys(("Indian elephant", "African elephant", "tusker"), "Elephant"),
    **dict.fromkeys(("brown bear", "American black bear"), "Bear"),
    **dict.fromkeys(("wall clock", "analog clock"), "Clock"),
    **dict.fromkeys(("folding chair", "rocking chair"), "Chair"),
    **dict.fromkeys(("laptop", "notebook"), "Laptop"),
    **dict.fromkeys(("water bottle", "beer bottle", "wine bottle", "pop bottle"), "Bottle"),
    "airliner": "Airplane", "zebra": "Zebra", "banana": "Banana", "Granny Smith": "Apple",
    "orange": "Orange", "broccoli": "Broccoli", "pizza": "Pizza", "hotdog": "Hot Dog",
    "mouse": "Mouse", "computer keyboard": "Computer Keyboard",
    "cellular telephone": "Mobile Phone", "television": "TV", "remote control": "Remote Control",
    "microwave": "Microwave", "toaster": "Toaster", "refrigerator": "Refrigerator",
    "dining table": "Dining Table", "studio couch": "Couch", "teddy": "Teddy Bear",
    "vase": "Vase", "umbrella": "Umbrella", "backpack": "Backpack", "park bench": "Bench",
    "espresso": "Coffee",
})
# Every dog breed: ImageNet's classes 151 (Chihuahua) to 268 (Mexican hairless).
IMAGENET_DOGS = (151, 268, "Chihuahua", "Mexican hairless")
