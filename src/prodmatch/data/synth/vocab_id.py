"""Hand-written word lists for the synthetic Shopee generator (Indonesian/English seller speak).

Everything here is invented or generic vocabulary: no real titles and no real brand names.
Each noun carries the quantity dimension its variants differ by (``None``: no quantity).
"""
from __future__ import annotations

# Quantity dimensions: weight (base g), volume (ml), length (mm), inch, count, memory (GB; 0.5 = 512MB).
WEIGHT, VOLUME, LENGTH, INCH, COUNT, MEMORY = "weight", "volume", "length", "inch", "count", "memory"

# name -> shapes the drawer knows, base colours (RGB) of the category's products,
# nouns as (indonesian, english, dimension, ladder of quantities, count word),
# descriptors (product-line words), fillers (generic words sellers add, shared by the category).
CATEGORIES = {
    "kecantikan": dict(
        shapes=("bottle", "tube", "jar"),
        palette=((236, 170, 190), (250, 235, 215), (180, 220, 200), (200, 190, 235)),
        nouns=(
            ("Serum Wajah", "Face Serum", VOLUME, (10, 15, 20, 30, 50, 100), None),
            ("Toner Wajah", "Facial Toner", VOLUME, (60, 100, 150, 250, 500), None),
            ("Sabun Cuci Muka", "Facial Wash", VOLUME, (50, 100, 150), None),
            ("Krim Pelembab", "Moisturizer Cream", WEIGHT, (15, 30, 50, 100), None),
            ("Tabir Surya", "Sunscreen", VOLUME, (30, 50, 100), None),
            ("Masker Wajah", "Face Mask", COUNT, (1, 5, 10, 12), "pcs"),
        ),
        descriptors=("Brightening", "Acne Care", "Aloe Vera", "Niacinamide", "Vitamin C", "Hyaluronic",
                     "Centella", "Whitening", "Gold", "Night", "Collagen", "Tea Tree", "Rose", "Crème"),
        fillers=("perawatan wajah", "skincare", "kulit", "glowing", "wajah", "face", "skin care",
                 "kulit berminyak", "jerawat", "bpom"),
    ),
    "makanan": dict(
        shapes=("pouch", "box", "jar"),
        palette=((200, 60, 40), (240, 190, 60), (120, 70, 40), (60, 130, 60)),
        nouns=(
            ("Keripik Pisang", "Banana Chips", WEIGHT, (100, 150, 250, 500, 1000), None),
            ("Kopi Bubuk", "Ground Coffee", WEIGHT, (100, 200, 250, 500, 1000), None),
            ("Teh Hijau", "Green Tea", COUNT, (10, 25, 30, 50), "pcs"),
            ("Madu Murni", "Pure Honey", VOLUME, (250, 350, 500, 650, 1000), None),
            ("Kacang Mede", "Cashew Nuts", WEIGHT, (100, 250, 500, 1000), None),
            ("Coklat Batang", "Chocolate Bar", WEIGHT, (30, 60, 100, 200), None),
            ("Sambal Bawang", "Chili Sauce", WEIGHT, (100, 150, 200, 250), None),
        ),
        descriptors=("Pedas", "Original", "Balado", "Keju", "Manis", "Premium", "Arabika", "Robusta",
                     "Jahe", "Hitam", "Super", "Asli", "Homemade"),
        fillers=("makanan", "snack", "cemilan", "oleh oleh", "food", "enak", "halal", "kiloan"),
    ),
    "dapur": dict(
        shapes=("pan", "bottle", "jar"),
        palette=((60, 60, 70), (200, 40, 40), (230, 230, 230), (70, 110, 180)),
        nouns=(
            ("Panci", "Cooking Pot", LENGTH, (160, 180, 200, 240), None),
            ("Wajan Teflon", "Frying Pan", LENGTH, (200, 220, 240, 260, 280), None),
            ("Toples Kaca", "Glass Jar", VOLUME, (250, 500, 750, 1000), None),
            ("Botol Minum", "Water Bottle", VOLUME, (500, 600, 750, 1000, 1500, 2000), None),
            ("Minyak Goreng", "Cooking Oil", VOLUME, (1000, 2000), None),
            ("Kecap Manis", "Sweet Soy Sauce", VOLUME, (135, 275, 520, 600), None),
        ),
        descriptors=("Anti Lengket", "Stainless", "Granit", "Tutup Kaca", "Marble", "Tebal", "Jumbo",
                     "Mini", "Motif", "Kedap Udara", "Premium", "Set"),
        fillers=("peralatan dapur", "kitchen", "masak", "dapur", "rumah tangga", "kitchenware", "alat masak"),
    ),
    "tas": dict(
        shapes=("handbag",),
        palette=((40, 40, 40), (150, 90, 50), (220, 200, 170), (170, 40, 60)),
        nouns=(
            ("Tas Wanita", "Women's Bag", LENGTH, (200, 250, 300, 350), None),
            ("Tas Selempang", "Sling Bag", LENGTH, (180, 200, 250), None),
            ("Dompet Wanita", "Women's Wallet", None, (), None),
            ("Tas Ransel", "Backpack", LENGTH, (300, 400, 450), None),
            ("Tas Tote", "Tote Bag", None, (), None),
        ),
        descriptors=("Kulit", "Korean Style", "Mini", "Jumbo", "Import", "Kanvas", "Motif", "Polos",
                     "Vintage", "Premium", "Batam", "Rajut", "Fashion"),
        fillers=("tas", "bag", "fashion wanita", "wanita", "cewek", "kekinian", "korea", "murah"),
    ),
    "pakaian": dict(
        shapes=("shirt",),
        palette=((240, 240, 240), (30, 30, 40), (40, 70, 140), (190, 50, 50)),
        nouns=(
            ("Kaos Polos", "Plain T-Shirt", COUNT, (1, 2, 3, 5), "pcs"),
            ("Kemeja Pria", "Men's Shirt", None, (), None),
            ("Kaos Kaki", "Socks", COUNT, (3, 5, 6, 12), "pasang"),
            ("Hijab Segi Empat", "Square Hijab", COUNT, (1, 2, 3), "pcs"),
            ("Celana Dalam", "Underwear", COUNT, (3, 6, 12), "pcs"),
            ("Kaos Anak", "Kids' T-Shirt", None, (), None),
        ),
        descriptors=("Katun", "Combed 30s", "Oversize", "Lengan Panjang", "Polos", "Motif", "Distro",
                     "Premium", "Basic", "Unisex", "Slim Fit", "Bahan Adem"),
        fillers=("baju", "pakaian", "fashion pria", "fashion", "atasan", "pria", "wanita", "unisex"),
    ),
    "sepatu": dict(
        shapes=("shoe",),
        palette=((245, 245, 245), (30, 30, 30), (60, 80, 150), (200, 80, 40)),
        nouns=(
            ("Sepatu Sneakers", "Sneakers Shoes", None, (), None),
            ("Sepatu Wanita", "Women's Shoes", None, (), None),
            ("Sandal Pria", "Men's Sandals", None, (), None),
            ("Sepatu Anak", "Kids' Shoes", None, (), None),
            ("Sepatu Lari", "Running Shoes", None, (), None),
        ),
        descriptors=("Casual", "Sport", "Slip On", "Kanvas", "Kulit", "Hitam", "Putih", "Import", "Korea",
                     "Flat", "Running", "Sekolah"),
        fillers=("sepatu", "shoes", "alas kaki", "footwear", "pria", "wanita", "size 36-44"),
    ),
    "gadget": dict(
        shapes=("phone", "box"),
        palette=((30, 30, 35), (230, 230, 235), (40, 90, 200), (200, 200, 60)),
        nouns=(
            ("Casing HP", "Phone Case", None, (), None),
            ("Kabel Data", "Data Cable", LENGTH, (1000, 1500, 2000, 3000), None),
            ("Kepala Charger", "Charger Adapter", None, (), None),
            ("Flashdisk", "Flash Drive", MEMORY, (0.5, 8, 16, 32, 64, 128), None),
            ("Kartu Memori", "Memory Card", MEMORY, (16, 32, 64, 128, 256), None),
            ("Hardisk Eksternal", "External Hard Drive", MEMORY, (500, 1000, 2000), None),
            ("Ring Light", "Ring Light", INCH, (6, 10, 12, 14), None),
        ),
        descriptors=("Type C", "Micro USB", "Lightning", "Fast Charging", "Anti Crack", "Silicone",
                     "Bluetooth", "Original", "Softcase", "USB 3.0", "Ultra", "Pro", "Max"),
        fillers=("hp", "handphone", "aksesoris hp", "gadget", "android", "iphone", "smartphone"),
    ),
    "rumah_tangga": dict(
        shapes=("box", "bottle", "pouch"),
        palette=((60, 140, 220), (240, 240, 250), (120, 200, 120), (250, 150, 60)),
        nouns=(
            ("Tisu Wajah", "Facial Tissue", COUNT, (50, 100, 200, 250), "lembar"),
            ("Deterjen Cair", "Liquid Detergent", VOLUME, (400, 800, 1000, 1600), None),
            ("Sabun Cuci Piring", "Dish Soap", VOLUME, (400, 650, 780), None),
            ("Pewangi Pakaian", "Fabric Softener", VOLUME, (500, 900, 1800), None),
            ("Lakban Bening", "Packing Tape", LENGTH, (45000, 90000, 100000), None),
            ("Deterjen Bubuk", "Detergent Powder", WEIGHT, (800, 1500, 1800), None),
        ),
        descriptors=("Lavender", "Lemon", "Anti Bakteri", "Refill", "Pouch", "Jeruk Nipis", "Wangi",
                     "Fresh", "Sakura", "Ekstra", "Lembut"),
        fillers=("rumah tangga", "household", "kebersihan", "grosir", "murah", "kebutuhan rumah"),
    ),
    "bayi": dict(
        shapes=("box", "bottle", "pouch"),
        palette=((170, 210, 250), (250, 200, 220), (255, 240, 180), (200, 240, 200)),
        nouns=(
            ("Popok Bayi", "Baby Diapers", COUNT, (20, 24, 32, 40, 50), "pcs"),
            ("Minyak Telon", "Telon Oil", VOLUME, (30, 60, 100, 150), None),
            ("Bedak Bayi", "Baby Powder", WEIGHT, (50, 100, 150, 200), None),
            ("Tisu Basah", "Wet Wipes", COUNT, (10, 50, 80, 100), "lembar"),
            ("Botol Susu", "Baby Bottle", VOLUME, (60, 120, 150, 250), None),
        ),
        descriptors=("Newborn", "Size M", "Size L", "Lavender", "Tanpa Alkohol", "Sensitive",
                     "Celana", "Perekat", "Lembut", "Extra Dry", "Organik"),
        fillers=("bayi", "baby", "anak", "perlengkapan bayi", "balita", "kids", "ibu dan bayi"),
    ),
    "alat_tulis": dict(
        shapes=("box", "tube"),
        palette=((40, 60, 160), (220, 40, 40), (40, 40, 40), (250, 210, 40)),
        nouns=(
            ("Pulpen", "Ballpoint Pen", COUNT, (1, 3, 6, 12), "pcs"),
            ("Buku Tulis", "Notebook", COUNT, (38, 58, 100), "lembar"),
            ("Kertas HVS", "Printing Paper", COUNT, (100, 250, 500), "lembar"),
            ("Spidol", "Marker", COUNT, (1, 4, 12), "biji"),
            ("Isi Staples", "Staples Refill", COUNT, (1, 10, 20), "pack"),
        ),
        descriptors=("Gel", "Hitam", "Biru", "Warna Warni", "Permanen", "Whiteboard", "A4", "F4",
                     "Bergaris", "0.5", "Kantor", "Sekolah"),
        fillers=("alat tulis", "atk", "stationery", "sekolah", "kantor", "office", "grosir"),
    ),
    "pokok": dict(
        shapes=("pouch", "box"),
        palette=((240, 240, 230), (200, 160, 90), (90, 150, 60), (230, 120, 60)),
        nouns=(
            ("Telur Ayam", "Chicken Eggs", COUNT, (10, 15, 30), "butir"),
            ("Beras Pulen", "Fluffy Rice", WEIGHT, (1000, 2500, 5000), None),
            ("Gula Pasir", "Granulated Sugar", WEIGHT, (500, 1000, 2000), None),
            ("Tepung Terigu", "Wheat Flour", WEIGHT, (500, 1000), None),
            ("Bawang Putih", "Garlic", WEIGHT, (250, 500, 1000), None),
        ),
        descriptors=("Kampung", "Organik", "Premium", "Curah", "Segar", "Kupas", "Protein Tinggi",
                     "Lokal", "Medium", "Super"),
        fillers=("sembako", "bahan pokok", "dapur", "grosir", "kebutuhan dapur", "murah", "fresh"),
    ),
    "kesehatan": dict(
        shapes=("bottle", "box", "jar"),
        palette=((60, 160, 120), (240, 240, 240), (240, 140, 40), (60, 90, 170)),
        nouns=(
            ("Masker Medis", "Medical Mask", COUNT, (10, 25, 50), "pcs"),
            ("Vitamin C", "Vitamin C", WEIGHT, (0.25, 0.5, 1), None),
            ("Hand Sanitizer", "Hand Sanitizer", VOLUME, (60, 100, 250, 500), None),
            ("Minyak Kayu Putih", "Eucalyptus Oil", VOLUME, (15, 30, 60, 120, 210), None),
            ("Suplemen Herbal", "Herbal Supplement", COUNT, (30, 60, 100), "kapsul"),
        ),
        descriptors=("3 Ply", "Earloop", "Anti Virus", "Gel", "Spray", "Habbatussauda", "Zinc",
                     "Daya Tahan Tubuh", "Herbal", "Impor", "Asli", "Plus"),
        fillers=("kesehatan", "health", "obat", "imun", "apotek", "bpom", "herbal"),
    ),
    "perkakas": dict(
        shapes=("box", "tube"),
        palette=((230, 190, 30), (40, 40, 40), (200, 50, 30), (60, 110, 170)),
        nouns=(
            ("Mata Bor", "Drill Bit", LENGTH, (3, 5, 6, 8, 10), None),
            ("Obeng Set", "Screwdriver Set", COUNT, (6, 8, 12, 24), "pcs"),
            ("Lakban Hitam", "Duct Tape", LENGTH, (10000, 20000, 45000), None),
            ("Kunci Pas", "Open Wrench", LENGTH, (8, 10, 12, 14), None),
            ("Lem Tembak", "Glue Stick", COUNT, (5, 10, 20), "batang"),
        ),
        descriptors=("Baja", "Besi", "Magnet", "Kayu", "Tembok", "Heavy Duty", "Multifungsi",
                     "Chrome", "Anti Karat", "Set Lengkap", "Import"),
        fillers=("perkakas", "tools", "bengkel", "pertukangan", "alat teknik", "hardware", "diy"),
    ),
}

# Brand names are built from these syllables, so no real brand appears.
BRAND_ONSETS = ("ka", "ri", "mo", "la", "vi", "sa", "ne", "to", "ra", "li", "na", "zu", "be", "ko", "mi",
                "ta", "lo", "de", "ve", "ro", "su", "pe", "ga", "wi", "da", "je", "fa", "ha")
BRAND_ENDINGS = ("", "x", "na", "ro", "ku", "ly", "va", "ra", "ko", "mo", "tic", "nia", "ca")

PROMO_WORDS = ("ORIGINAL", "READY STOCK", "COD", "BPOM", "PROMO", "MURAH", "TERLARIS", "BISA COD",
               "100% ORI", "FREE ONGKIR", "TERMURAH", "BEST SELLER", "NEW", "HOT SALE", "GROSIR",
               "DISKON", "ORI", "Ready", "Murah Meriah", "PALING LARIS", "Flash Sale", "Limited",
               "Garansi", "Kirim Cepat", "Viral", "Hits")
EMOJIS = ("✔", "❤", "✅", "🔥", "⭐", "💯", "✨", "♥")
BRACKETS = (("[", "]"), ("【", "】"), ("(", ")"), ("~", "~"), ("|", "|"), ("**", "**"))

# Seller abbreviations (word -> short form), applied case-insensitively on whole words.
ABBREVIATIONS = {
    "wanita": "wnt", "original": "ori", "premium": "prem", "paket": "pkt", "dengan": "dgn",
    "murah": "mrh", "sepatu": "spt", "kualitas": "kwalitas", "handphone": "hp", "pria": "cowok",
    "anak": "ank", "tebal": "tbl", "besar": "bsr", "kecil": "kcl", "hitam": "htm", "putih": "pth",
    "minyak": "myk", "bayi": "baby", "import": "impor", "ukuran": "uk",
}

# Words a seller may put in a throwaway title (the "generic" title of a matching posting).
GENERIC_WORDS = ("barang", "produk", "terbaru", "kekinian", "viral", "bagus", "berkualitas",
                 "harga grosir", "stok banyak", "kualitas terbaik", "jual", "termurah", "bestseller",
                 "cuci gudang", "new arrival", "bisa pilih", "langsung kirim")

# Short texts for sticker and banner overlays (ASCII, drawn with the bundled font).
STICKER_TEXTS = ("PROMO", "ORI", "COD", "-50%", "SALE", "NEW", "HOT", "100%", "FREE", "BEST")
BANNER_TEXTS = ("FLASH SALE", "12.12 SALE", "GRATIS ONGKIR", "DISKON 70%", "PROMO GAJIAN",
                "BIG SALE", "CUCI GUDANG", "HARBOLNAS", "SUPER SALE", "BELI 2 GRATIS 1")
SHOP_WORDS = ("Toko", "Shop", "Store", "Official", "Grosir", "Mart", "Galeri", "Jaya", "Abadi", "Berkah")
