"""Seeded, deterministic synthetic marketplace: realistic requests and feedback
for trying pyfeat and training the demo's model without data of one's own
(the tests and benchmarks run on it too; their fixtures are in tests/shared.py).

The world
---------
``Marketplace(seed)`` builds a classified-ads marketplace from one seed:

* **Catalogue.** 20 top-level categories (phones, cars, real estate, furniture,
  clothes, pets, services, ...) with a skewed popularity; each has 3-10
  subcategories whose ids are globally unique.  Every category carries word
  lists in Russian, English and Chinese, brand/model tokens and a number
  pattern ("128 ГБ", "2015 г.", "54 м²", "42码") from which titles and search
  queries are built, so queries overlap titles.
* **Geography.** 30 regions (mostly Russian, plus Belarus, Kazakhstan, China and
  Georgia), each with 1-5 cities at real coordinates.  Sellers, items and
  users are scattered a few km around their city's centre.
* **Sellers.** Heavy-tailed size, ~20% companies (bigger, specialised in one
  category, more often new goods, delivery and paid promotion), a hidden
  quality that drives the public rating (absent when there are no reviews).
* **Items.** Category follows the seller's speciality; log-normal prices whose
  scale depends on the (sub)category, brand and condition, rounded the way
  people round them; some free items; prices stored as ``int`` or ``float``;
  ``old_price`` on ~15% of items (mostly price drops).  Ages from minutes to
  90 days, skewed young.  A hidden attractiveness drives photos, description
  length and the heavy-tailed (Zipf-like) counters
  ``impressions_7d >= views_7d >> contacts_7d, favorites_7d``.  Titles are
  ~60% Russian, ~30% English, ~10% Chinese, with brands, numbers, mixed case,
  punctuation, a few emoji, mixed scripts and some empty titles.  Optional
  keys are absent with per-key probabilities (5-40%).
* **Users.** Region/city/location (location permission for ~70%), platform,
  UTC offset, a latent preference over subcategories (Dirichlet within a
  Dirichlet over categories), a latent preferred price level per category,
  a distance tolerance and a heavy-tailed activity level (some users are new).

Requests
--------
``Marketplace.request(i)`` is request number ``i``: it depends only on
``(seed, i)`` (its own random stream), never on other calls.  It picks a user
(active users more often), sets ``now = world_now + 60 * i`` and generates the
user context of the data contract (DESIGN.md, "Inputs"): up to 3000 views (newest first, biased to
the user's interests, region and preferred prices, in sessions), contacts
(a subset of the viewed items), favorites, impressions, search queries and
noisy reported ``interests``/``sub_interests``.  Then eight first-level
candidate generators (see ``SOURCE_NAMES``) propose items; they are merged
without duplicates into ``n_candidates`` candidates with ``source``,
``source_score`` (the generator's own score, min-max scaled over its list and
weighted by how much the service trusts that generator, so scores of
different generators are comparable) and ``source_rank`` (0-based rank of the
candidate among the candidates credited to the same generator, in that
generator's order).  Candidates are returned in a random order.

Ground truth
------------
``Marketplace.relevance(req)`` is a hidden click logit per candidate: the
user's latent subcategory preference, price fit to the user's latent price
level, distance (softened by delivery), freshness, hidden seller quality and
item attractiveness, photos, popularity, paid promotion, fatigue from
earlier impressions, lower for items already contacted, plus noise.  The
request's features see these only partially (reported interests are noisy,
the price level shows only through viewed prices, some keys are missing), so
a model can learn but not reproduce it.  ``Marketplace.feedback(req)`` draws
position-independent clicks ``Bernoulli(sigmoid(relevance))`` and contacts
among the clicks.  The generators' own order is informative but clearly
worse than the relevance order.

All randomness comes from ``numpy.random.Generator`` streams derived from the
seed with ``SeedSequence`` spawn keys (world parts, requests, relevance noise,
feedback), never from the global RNG or ``hash()``; NumPy's generators give
the same streams on every platform.  Values written into records (prices,
coordinates, ratings, weights) are rounded, which keeps last-bit differences
between math libraries out of the output.

Typical use::

    world = Marketplace(seed=0)                 # 50k items, 5k users
    req = world.request(17)                     # 3000 candidates
    req.user_blob, req.item_blobs, req.candidates
    clicks, contacts = world.feedback(req)      # labels for training
"""

from __future__ import annotations

from typing import Any

from dataclasses import dataclass, field

import msgpack
import numpy as np

from .metrics import ndcg_at_k  # the world's own ranking quality checks use it

__all__ = [
    "Marketplace",
    "Request",
    "SOURCE_NAMES",
    "VAS_LEVELS",
    "ITEM_REQUIRED_KEYS",
    "ITEM_OPTIONAL_KEYS",
    "USER_REQUIRED_KEYS",
    "USER_OPTIONAL_KEYS",
    "ndcg_at_k",
]

DAY = 86_400
DEFAULT_NOW = 1_767_225_600  # 2026-01-01 00:00:00 UTC
MAX_VIEWS = 3000
HISTORY_DAYS = 30

#: Names of the candidate generators; ``source`` is an index into this tuple.
SOURCE_NAMES = (
    "popular",            # 0: globally popular items
    "category_interest",  # 1: popular items in the user's interest categories
    "collaborative",      # 2: subcategory interests x learned item quality
    "nearby",             # 3: closest items (or the user's region)
    "item2item",          # 4: similar to recently viewed (subcategory, price)
    "fresh",              # 5: newest items in the interest categories
    "promoted",           # 6: paid promotion (vas) in the interest categories
    "random",             # 7: exploration
)

#: Paid promotion levels, weakest first.
VAS_LEVELS = ("", "highlight", "x2", "x5", "xl")

ITEM_REQUIRED_KEYS = (
    "id", "title", "category", "subcategory", "price", "created_at", "seller_id", "region",
)
ITEM_OPTIONAL_KEYS = (
    "old_price", "description_len", "city", "lat", "lon", "updated_at",
    "seller_rating", "seller_reviews", "seller_active_items", "seller_is_company",
    "photos", "has_video", "delivery", "condition", "vas",
    "impressions_7d", "views_7d", "contacts_7d", "favorites_7d", "views_total",
)
USER_REQUIRED_KEYS = ("user_id", "now")
USER_OPTIONAL_KEYS = (
    "platform", "tz_offset_min", "region", "city", "lat", "lon", "interests",
    "sub_interests", "views", "contacts", "favorites", "impressions", "queries",
)

# ---------------------------------------------------------------------------
# Static catalogue: per category its names, price scale (median in roubles,
# log-sd), share of free items, share of new goods, nouns (one per
# subcategory or shared), adjectives, brand/model tokens and a number pattern
# (values, Russian, English and Chinese format).  Words are "ru|en|zh".
# ---------------------------------------------------------------------------

_CATEGORIES = [
    dict(name="Телефоны|Phones|手机", pop=0.08, median=15_000, sigma=0.9, free=0.004, new=0.35,
         nouns=["смартфон|smartphone|智能手机", "телефон|phone|手机", "чехол|phone case|手机壳",
                "зарядка|charger|充电器", "наушники|earphones|耳机", "смарт-часы|smartwatch|智能手表",
                "планшет|tablet|平板电脑", "повербанк|power bank|充电宝"],
         adjs=["оригинал|original|原装", "разблокирован|unlocked|解锁", "с коробкой|boxed|带包装",
               "черный|black|黑色", "белый|white|白色"],
         brands=["iPhone 13 Pro", "iPhone 15", "iPhone 11", "Samsung Galaxy S21", "Samsung Galaxy A54",
                 "Xiaomi Redmi Note 12", "Xiaomi 13T", "Honor 90", "Huawei P40", "Google Pixel 7",
                 "Realme C55", "AirPods Pro", "Apple Watch SE", "iPad Air"],
         num=([32, 64, 128, 256, 512], "{} ГБ", "{}GB", "{}GB")),
    dict(name="Компьютеры|Computers|电脑", pop=0.05, median=25_000, sigma=1.0, free=0.004, new=0.3,
         nouns=["ноутбук|laptop|笔记本电脑", "компьютер|desktop PC|台式电脑", "монитор|monitor|显示器",
                "видеокарта|graphics card|显卡", "клавиатура|keyboard|键盘", "мышь|mouse|鼠标",
                "принтер|printer|打印机", "процессор|CPU|处理器", "роутер|router|路由器"],
         adjs=["игровой|gaming|游戏", "офисный|office|办公", "мощный|powerful|高性能", "тонкий|slim|轻薄"],
         brands=["MacBook Air M1", "MacBook Pro 14", "Lenovo ThinkPad X1", "ASUS ROG Strix", "HP Pavilion",
                 "Dell XPS 13", "Acer Aspire 5", "RTX 3060", "RTX 4070", "Logitech G502", "Huawei MateBook D16"],
         num=([4, 8, 16, 32, 64], "{} ГБ", "{}GB RAM", "{}G内存")),
    dict(name="Автомобили|Cars|汽车", pop=0.06, median=950_000, sigma=0.8, free=0.0, new=0.12,
         nouns=["седан|sedan|轿车", "внедорожник|SUV|越野车", "хэтчбек|hatchback|两厢车", "универсал|wagon|旅行车",
                "минивэн|minivan|面包车", "пикап|pickup truck|皮卡", "кроссовер|crossover|跨界车"],
         adjs=["один владелец|one owner|一手车", "не битый|no accidents|无事故", "автомат|automatic|自动挡",
               "механика|manual|手动挡", "полный привод|AWD|四驱"],
         brands=["Lada Granta", "Lada Vesta", "Toyota Camry", "Toyota RAV4", "Kia Rio", "Hyundai Solaris",
                 "Volkswagen Polo", "BMW X5", "Mercedes-Benz E200", "Skoda Octavia", "Haval Jolion",
                 "Chery Tiggo 7 Pro", "Geely Coolray", "Renault Logan", "Нива"],
         num=(list(range(1998, 2026)), "{} г.", "{}", "{}年")),
    dict(name="Недвижимость|Real estate|房产", pop=0.05, median=3_500_000, sigma=1.2, free=0.0, new=0.25,
         nouns=["квартира|apartment|公寓", "студия|studio|单间公寓", "комната|room|房间", "дом|house|房子",
                "дача|country house|别墅", "участок|land plot|土地", "гараж|garage|车库", "офис|office|办公室"],
         adjs=["1-к|1-bedroom|一室", "2-к|2-bedroom|两室", "3-к|3-bedroom|三室", "с ремонтом|renovated|精装修",
               "у метро|near metro|近地铁", "в новостройке|new building|新房"],
         brands=[],
         num=(list(range(14, 160, 3)), "{} м²", "{} sq m", "{}平米")),
    dict(name="Мебель|Furniture|家具", pop=0.07, median=7_000, sigma=1.0, free=0.06, new=0.3,
         nouns=["диван|sofa|沙发", "кровать|bed|床", "шкаф|wardrobe|衣柜", "стол|table|桌子", "стул|chair|椅子",
                "комод|dresser|五斗柜", "кресло|armchair|扶手椅", "матрас|mattress|床垫", "полка|shelf|架子"],
         adjs=["угловой|corner|转角", "раскладной|folding|折叠", "деревянный|wooden|实木", "кожаный|leather|真皮",
               "икеа|ikea style|宜家风"],
         brands=["IKEA", "Askona", "Hoff", "Lazurit", "Много Мебели", "Ormatek"],
         num=([80, 90, 120, 140, 160, 180, 200, 220], "{} см", "{} cm", "{}厘米")),
    dict(name="Женская одежда|Women's clothing|女装", pop=0.14, median=1_500, sigma=0.9, free=0.03, new=0.4,
         nouns=["платье|dress|连衣裙", "пальто|coat|大衣", "куртка|jacket|夹克", "джинсы|jeans|牛仔裤",
                "юбка|skirt|裙子", "блузка|blouse|衬衫", "свитер|sweater|毛衣", "пуховик|down jacket|羽绒服"],
         adjs=["женский|women's|女款", "зимний|winter|冬季", "летний|summer|夏季", "с биркой|with tags|带吊牌",
               "оверсайз|oversize|宽松"],
         brands=["Zara", "H&M", "Mango", "Uniqlo", "Gucci", "Massimo Dutti", "Love Republic", "Befree"],
         num=(["XS", "S", "M", "L", "XL", 42, 44, 46, 48, 50], "р. {}", "size {}", "{}码")),
    dict(name="Мужская одежда и обувь|Men's clothing and shoes|男装鞋", pop=0.08, median=2_500, sigma=0.9, free=0.02,
         new=0.35,
         nouns=["кроссовки|sneakers|运动鞋", "ботинки|boots|靴子", "туфли|shoes|皮鞋", "куртка|jacket|男士夹克",
                "костюм|suit|西装", "футболка|t-shirt|T恤", "рубашка|shirt|衬衫", "худи|hoodie|卫衣"],
         adjs=["мужские|men's|男款", "кожаные|leather|真皮", "зимние|winter|冬季", "оригинал|original|正品"],
         brands=["Nike Air Max 90", "Adidas Ultraboost", "New Balance 574", "Puma", "Reebok Classic",
                 "The North Face", "Timberland", "Converse", "Jordan 1"],
         num=(list(range(38, 47)), "р. {}", "size {}", "{}码")),
    dict(name="Детские товары|Kids|母婴", pop=0.09, median=1_500, sigma=1.0, free=0.08, new=0.3,
         nouns=["коляска|stroller|婴儿车", "автокресло|car seat|安全座椅", "кроватка|crib|婴儿床",
                "игрушка|toy|玩具", "конструктор|building set|积木", "детская одежда|kids clothes|童装",
                "самокат|kids scooter|儿童滑板车", "манеж|playpen|游戏围栏"],
         adjs=["детский|kids|儿童", "для девочки|for girl|女孩", "для мальчика|for boy|男孩",
               "2 в 1|2 in 1|二合一"],
         brands=["LEGO", "Cybex", "Chicco", "Happy Baby", "Tutis", "Barbie", "Hot Wheels", "Anex"],
         num=(list(range(1, 13)), "на {} лет", "{} years", "{}岁")),
    dict(name="Спорт и отдых|Sports|运动", pop=0.05, median=6_000, sigma=1.0, free=0.01, new=0.3,
         nouns=["велосипед|bicycle|自行车", "горный велосипед|mountain bike|山地车", "электросамокат|e-scooter|电动滑板车",
                "лыжи|skis|滑雪板", "сноуборд|snowboard|单板", "гантели|dumbbells|哑铃",
                "беговая дорожка|treadmill|跑步机", "палатка|tent|帐篷", "тренажер|exercise machine|健身器材"],
         adjs=["скоростной|speed|变速", "складной|folding|折叠", "алюминиевый|aluminium|铝合金",
               "для взрослых|adult|成人"],
         brands=["Stels", "Forward", "Merida", "Trek", "Giant", "Decathlon", "Xiaomi Mi Scooter Pro 2",
                 "Kugoo", "Salomon", "Burton"],
         num=([20, 24, 26, 27.5, 29], '{}"', '{}"', "{}寸")),
    dict(name="Бытовая техника|Appliances|家电", pop=0.06, median=12_000, sigma=0.9, free=0.02, new=0.35,
         nouns=["холодильник|fridge|冰箱", "стиральная машина|washing machine|洗衣机", "пылесос|vacuum cleaner|吸尘器",
                "микроволновка|microwave|微波炉", "телевизор|TV|电视", "кофемашина|coffee machine|咖啡机",
                "посудомоечная машина|dishwasher|洗碗机", "кондиционер|air conditioner|空调"],
         adjs=["встраиваемый|built-in|嵌入式", "с гарантией|with warranty|有保修", "робот|robot|机器人",
               "умный|smart|智能"],
         brands=["Samsung", "LG", "Bosch", "Indesit", "Атлант", "Dyson V11", "Philips", "Haier", "De'Longhi",
                 "Redmond"],
         num=([32, 43, 50, 55, 65, 75], '{}"', '{}"', "{}寸")),
    dict(name="Ремонт и строительство|Tools and repair|装修工具", pop=0.05, median=3_500, sigma=1.1, free=0.03, new=0.4,
         nouns=["дрель|drill|电钻", "шуруповерт|cordless screwdriver|电动螺丝刀", "перфоратор|rotary hammer|电锤",
                "болгарка|angle grinder|角磨机", "сварочный аппарат|welder|电焊机", "ламинат|laminate|地板",
                "плитка|tiles|瓷砖", "генератор|generator|发电机"],
         adjs=["аккумуляторный|cordless|充电式", "профессиональный|professional|专业", "в кейсе|with case|带箱"],
         brands=["Makita", "Bosch", "DeWALT", "Интерскол", "Metabo", "Ryobi", "Зубр", "Hilti"],
         num=([12, 18, 20, 36, 220], "{} В", "{}V", "{}伏")),
    dict(name="Дом и сад|Garden|园艺", pop=0.03, median=2_000, sigma=1.1, free=0.05, new=0.35,
         nouns=["газонокосилка|lawn mower|割草机", "семена|seeds|种子", "рассада|seedlings|幼苗", "теплица|greenhouse|温室",
                "мотоблок|walk-behind tractor|手扶拖拉机", "дрова|firewood|木柴", "саженцы|saplings|树苗",
                "шланг|garden hose|水管"],
         adjs=["бензиновый|petrol|汽油", "электрический|electric|电动", "сортовые|varietal|良种"],
         brands=["Husqvarna", "Stihl", "Champion", "Gardena", "Нева", "Patriot"],
         num=(list(range(1, 51)), "{} шт.", "{} pcs", "{}个")),
    dict(name="Животные|Pets|宠物", pop=0.03, median=2_500, sigma=1.2, free=0.22, new=0.4,
         nouns=["котенок|kitten|小猫", "щенок|puppy|小狗", "попугай|parrot|鹦鹉", "аквариум|aquarium|鱼缸",
                "корм|pet food|宠物粮", "переноска|pet carrier|宠物航空箱", "лежанка|pet bed|宠物窝",
                "хомяк|hamster|仓鼠"],
         adjs=["британский|British Shorthair|英短", "мейн-кун|Maine Coon|缅因猫", "привитый|vaccinated|已打疫苗",
               "в добрые руки|free to good home|免费领养"],
         brands=["Royal Canin", "Purina Pro Plan", "Hill's", "Trixie", "Acana"],
         num=(list(range(1, 13)), "{} мес.", "{} months", "{}个月")),
    dict(name="Книги и хобби|Books and hobbies|图书爱好", pop=0.04, median=500, sigma=1.0, free=0.08, new=0.25,
         nouns=["книга|book|书", "учебник|textbook|教科书", "настольная игра|board game|桌游", "пазл|puzzle|拼图",
                "комикс|comic|漫画", "виниловая пластинка|vinyl record|黑胶唱片", "марки|stamps|邮票",
                "монета|coin|硬币"],
         adjs=["редкий|rare|稀有", "коллекционный|collectible|收藏", "в подарок|gift|礼物",
               "полный комплект|complete set|全套"],
         brands=["Гарри Поттер", "Harry Potter", "Monopoly", "Catan", "Warhammer 40k", "Marvel", "Manga",
                 "Толстой"],
         num=(list(range(1950, 2025, 3)), "{} г.", "{}", "{}年")),
    dict(name="Музыкальные инструменты|Musical instruments|乐器", pop=0.015, median=15_000, sigma=1.0, free=0.005,
         new=0.25,
         nouns=["гитара|guitar|吉他", "электрогитара|electric guitar|电吉他", "синтезатор|synthesizer|合成器",
                "пианино|piano|钢琴", "скрипка|violin|小提琴", "барабанная установка|drum kit|架子鼓",
                "укулеле|ukulele|尤克里里", "комбоусилитель|amplifier|音箱"],
         adjs=["акустическая|acoustic|原声", "цифровое|digital|数码", "винтажная|vintage|复古"],
         brands=["Yamaha", "Fender Stratocaster", "Gibson Les Paul", "Casio", "Roland", "Ibanez", "Cort"],
         num=([4, 6, 7, 12], "{} струн", "{}-string", "{}弦")),
    dict(name="Запчасти|Auto parts|汽车配件", pop=0.07, median=4_000, sigma=1.2, free=0.01, new=0.45,
         nouns=["шины|tires|轮胎", "диски|rims|轮毂", "аккумулятор|car battery|蓄电池", "фары|headlights|大灯",
                "бампер|bumper|保险杠", "магнитола|car stereo|车载音响", "видеорегистратор|dashcam|行车记录仪",
                "коврики|car mats|脚垫"],
         adjs=["зимние|winter|冬季", "летние|summer|夏季", "литые|alloy|铝合金", "шипованные|studded|钉胎"],
         brands=["Michelin", "Nokian Hakkapeliitta", "Bridgestone", "Continental", "Pirelli", "Varta",
                 "Toyota", "Lada"],
         num=(["205/55 R16", "195/65 R15", "225/45 R17", "215/60 R16", "R14", "R18"], "{}", "{}", "{}")),
    dict(name="Услуги|Services|服务", pop=0.04, median=2_000, sigma=1.0, free=0.25, new=0.0,
         nouns=["ремонт квартир|apartment renovation|装修", "грузоперевозки|moving services|搬家", "репетитор|tutor|家教",
                "уборка|cleaning|保洁", "маникюр|manicure|美甲", "фотограф|photographer|摄影师",
                "ремонт телефонов|phone repair|手机维修", "сантехник|plumber|水管工"],
         adjs=["недорого|affordable|便宜", "быстро|fast|快速", "с гарантией|guaranteed|有保障",
               "опыт 10 лет|10 years experience|十年经验"],
         brands=[],
         num=(list(range(1, 25)), "{} ч.", "{} h", "{}小时")),
    dict(name="Красота и здоровье|Beauty and health|美容健康", pop=0.04, median=1_500, sigma=1.0, free=0.02, new=0.6,
         nouns=["духи|perfume|香水", "крем|face cream|面霜", "фен|hair dryer|吹风机", "помада|lipstick|口红",
                "массажер|massager|按摩器", "тонометр|blood pressure monitor|血压计", "выпрямитель|hair straightener|直发器",
                "набор косметики|makeup set|化妆品套装"],
         adjs=["оригинал|authentic|正品", "запечатанный|sealed|未拆封", "подарочный|gift|礼盒"],
         brands=["Chanel No 5", "Dior Sauvage", "L'Oreal", "Dyson Supersonic", "Braun", "Philips", "MAC",
                 "Lancôme"],
         num=([30, 50, 75, 100, 150], "{} мл", "{} ml", "{}毫升")),
    dict(name="Игры и приставки|Games and consoles|游戏机", pop=0.025, median=18_000, sigma=1.1, free=0.005, new=0.3,
         nouns=["игровая приставка|game console|游戏机", "геймпад|gamepad|手柄", "игра|video game|游戏",
                "VR шлем|VR headset|VR眼镜", "игровое кресло|gaming chair|电竞椅", "диск|game disc|游戏光盘"],
         adjs=["прошитая|modded|破解", "с играми|with games|带游戏", "ревизия|revision|版本"],
         brands=["PlayStation 5", "PS4 Pro", "Xbox Series X", "Nintendo Switch OLED", "Steam Deck",
                 "DualSense", "Oculus Quest 2", "FIFA 24", "GTA V"],
         num=([500, 825, 1000, 2000], "{} ГБ", "{}GB", "{}GB")),
    dict(name="Часы и украшения|Watches and jewellery|手表首饰", pop=0.03, median=7_000, sigma=1.3, free=0.005, new=0.4,
         nouns=["часы|watch|手表", "кольцо|ring|戒指", "серьги|earrings|耳环", "цепочка|chain|项链",
                "браслет|bracelet|手链", "сумка|handbag|手提包", "очки|sunglasses|太阳镜", "кошелек|wallet|钱包"],
         adjs=["золотое|gold|黄金", "серебряное|silver|纯银", "винтаж|vintage|复古", "с бриллиантом|diamond|钻石"],
         brands=["Casio G-Shock", "Rolex Submariner", "Seiko 5", "Tissot", "Pandora", "Swarovski",
                 "Michael Kors", "Ray-Ban"],
         num=([375, 585, 750, 925], "{} проба", "{} gold", "{}足金")),
]

# Generic title tails; index 0 / 1 follow the item's condition.
_TAILS = [
    ("б/у", "used", "二手"), ("новый", "new", "全新"), ("срочно", "urgent", "急售"),
    ("торг", "OBO", "可议价"), ("в отличном состоянии", "excellent condition", "九成新"),
    ("как новый", "like new", "几乎全新"), ("недорого", "cheap", "便宜"), ("доставка", "delivery", "包邮"),
    ("самовывоз", "pickup only", "自提"), ("обмен", "swap", "可换"),
]

_QUERY_PREFIX = ("купить ", "buy ", "")  # per language

# (region name, weight, UTC offset in minutes, [(city, lat, lon), ...])
_REGIONS = [
    ("Москва и область", 0.17, 180, [("Москва", 55.7558, 37.6173), ("Химки", 55.8970, 37.4297),
                                     ("Подольск", 55.4242, 37.5547), ("Балашиха", 55.7963, 37.9382),
                                     ("Зеленоград", 55.9825, 37.1814)]),
    ("Санкт-Петербург и область", 0.09, 180, [("Санкт-Петербург", 59.9343, 30.3351), ("Пушкин", 59.7146, 30.3966),
                                              ("Гатчина", 59.5764, 30.1283)]),
    ("Новосибирская область", 0.035, 420, [("Новосибирск", 55.0084, 82.9357), ("Бердск", 54.7582, 83.1071)]),
    ("Свердловская область", 0.035, 300, [("Екатеринбург", 56.8389, 60.6057), ("Нижний Тагил", 57.9194, 59.9650),
                                          ("Каменск-Уральский", 56.4149, 61.9189)]),
    ("Татарстан", 0.03, 180, [("Казань", 55.7963, 49.1088), ("Набережные Челны", 55.7436, 52.3959),
                              ("Альметьевск", 54.9014, 52.2973)]),
    ("Нижегородская область", 0.025, 180, [("Нижний Новгород", 56.2965, 43.9361), ("Дзержинск", 56.2389, 43.4631),
                                           ("Арзамас", 55.3945, 43.8408)]),
    ("Челябинская область", 0.025, 300, [("Челябинск", 55.1644, 61.4368), ("Магнитогорск", 53.4072, 58.9791),
                                         ("Златоуст", 55.1719, 59.6725)]),
    ("Самарская область", 0.025, 240, [("Самара", 53.1959, 50.1002), ("Тольятти", 53.5078, 49.4204),
                                       ("Сызрань", 53.1585, 48.4681)]),
    ("Омская область", 0.015, 360, [("Омск", 54.9885, 73.3242)]),
    ("Ростовская область", 0.03, 180, [("Ростов-на-Дону", 47.2357, 39.7015), ("Таганрог", 47.2362, 38.8969),
                                       ("Шахты", 47.7085, 40.2160)]),
    ("Башкортостан", 0.025, 300, [("Уфа", 54.7388, 55.9721), ("Стерлитамак", 53.6305, 55.9307)]),
    ("Красноярский край", 0.02, 420, [("Красноярск", 56.0153, 92.8932), ("Норильск", 69.3558, 88.1893),
                                      ("Ачинск", 56.2694, 90.4993)]),
    ("Пермский край", 0.02, 300, [("Пермь", 58.0105, 56.2502), ("Березники", 59.4091, 56.8204)]),
    ("Воронежская область", 0.018, 180, [("Воронеж", 51.6720, 39.1843)]),
    ("Волгоградская область", 0.018, 180, [("Волгоград", 48.7080, 44.5133), ("Волжский", 48.7858, 44.7797)]),
    ("Краснодарский край", 0.04, 180, [("Краснодар", 45.0355, 38.9753), ("Сочи", 43.5855, 39.7231),
                                       ("Новороссийск", 44.7239, 37.7688), ("Анапа", 44.8950, 37.3163)]),
    ("Саратовская область", 0.015, 240, [("Саратов", 51.5331, 46.0342), ("Энгельс", 51.4989, 46.1258)]),
    ("Тюменская область", 0.015, 300, [("Тюмень", 57.1522, 65.5272), ("Тобольск", 58.1981, 68.2546)]),
    ("Иркутская область", 0.015, 480, [("Иркутск", 52.2870, 104.3050), ("Ангарск", 52.5448, 103.8885),
                                       ("Братск", 56.1514, 101.6342)]),
    ("Хабаровский край", 0.01, 600, [("Хабаровск", 48.4802, 135.0719), ("Комсомольск-на-Амуре", 50.5503, 137.0079)]),
    ("Приморский край", 0.012, 600, [("Владивосток", 43.1155, 131.8855), ("Находка", 42.8240, 132.8927),
                                     ("Уссурийск", 43.7972, 131.9519)]),
    ("Ярославская область", 0.01, 180, [("Ярославль", 57.6261, 39.8845), ("Рыбинск", 58.0446, 38.8426)]),
    ("Томская область", 0.008, 420, [("Томск", 56.4846, 84.9476)]),
    ("Калининградская область", 0.008, 120, [("Калининград", 54.7104, 20.4522)]),
    ("Мурманская область", 0.005, 180, [("Мурманск", 68.9585, 33.0827)]),
    ("Тульская область", 0.01, 180, [("Тула", 54.1931, 37.6173), ("Новомосковск", 54.0105, 38.2846)]),
    ("Беларусь", 0.03, 180, [("Минск", 53.9006, 27.5590), ("Брест", 52.0976, 23.7341),
                             ("Гродно", 53.6694, 23.8131)]),
    ("Казахстан", 0.035, 300, [("Алматы", 43.2220, 76.8512), ("Астана", 51.1694, 71.4491),
                               ("Шымкент", 42.3417, 69.5901)]),
    ("China", 0.06, 480, [("Harbin", 45.8038, 126.5350), ("Beijing", 39.9042, 116.4074),
                          ("Shanghai", 31.2304, 121.4737)]),
    ("Georgia", 0.012, 240, [("Tbilisi", 41.7151, 44.8271), ("Batumi", 41.6168, 41.6367)]),
]
_CHINA_REGION = [r[0] for r in _REGIONS].index("China")

# Optional item keys: probability that the key is absent from a record.
_ITEM_MISSING = {
    "description_len": 0.10, "city": 0.08, "latlon": 0.25, "updated_at": 0.20,
    "seller_rating": 0.05, "seller_reviews": 0.10, "seller_active_items": 0.12,
    "seller_is_company": 0.15, "photos": 0.05, "has_video": 0.35, "delivery": 0.30,
    "condition": 0.20, "vas": 0.10, "counters": 0.08, "counter": 0.05, "views_total": 0.15,
}
# Optional user keys absent per request (location/platform/tz are per user).
_USER_MISSING = {
    "interests": 0.10, "sub_interests": 0.15, "views": 0.05, "contacts": 0.10,
    "favorites": 0.15, "impressions": 0.10, "queries": 0.15,
}

_VAS_P = np.array([0.86, 0.055, 0.04, 0.025, 0.02])
_VAS_BOOST = np.array([1.0, 1.6, 2.0, 5.0, 3.0])  # impressions multiplier
_PLATFORMS = ("web", "ios", "android")

# Candidate generator shares of the request and merge priority.
_SOURCE_SHARE = np.array([0.12, 0.15, 0.15, 0.13, 0.15, 0.10, 0.05, 0.15])
_MERGE_ORDER = (4, 2, 1, 3, 0, 5, 6, 7)
# Each generator reports a score in (0, 1]: its own score min-max scaled over its
# list, times how much the serving stack trusts the generator.
_SOURCE_TRUST = np.array([0.5, 0.6, 0.8, 0.55, 0.9, 0.45, 0.4, 0.15])

# Hidden relevance: intercept of the click logit.
_REL_BIAS = -2.5


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _haversine_km(lat1, lon1, lat2, lon2):
    """Great-circle distance in km (arrays broadcast)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dl = np.radians(lon2) - np.radians(lon1)
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * 6371.0 * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def _nice_price(p):
    """Round prices the way sellers do (…90, hundreds, thousands)."""
    p = np.asarray(p, dtype=np.float64)
    out = np.where(p < 100, np.round(p),
          np.where(p < 1_000, np.round(p / 10) * 10,
          np.where(p < 100_000, np.round(p / 100) * 100,
          np.where(p < 10_000_000, np.round(p / 1_000) * 1_000, np.round(p / 10_000) * 10_000))))
    return np.maximum(out, 1.0)


def _topk(keys, k):
    """Indices of the k largest finite keys, sorted by key descending (ties by index)."""
    finite = np.flatnonzero(np.isfinite(keys))
    if finite.size == 0 or k <= 0:
        return np.empty(0, dtype=np.int64)
    kv = keys[finite]
    if k < finite.size:
        part = np.argpartition(-kv, k - 1)[:k]
        finite, kv = finite[part], kv[part]
    order = np.lexsort((finite, -kv))
    return finite[order].astype(np.int64)


class _GroupSampler:
    """Weighted sampling of items within groups (one searchsorted for many draws)."""

    def __init__(self, keys, weights, n_groups):
        order = np.argsort(keys, kind="stable")
        self.order = order
        sk = keys[order]
        self.cum = np.cumsum(weights[order].astype(np.float64))
        g = np.arange(n_groups)
        self.start = np.searchsorted(sk, g, "left")
        self.end = np.searchsorted(sk, g, "right")
        lo = np.where(self.start > 0, self.cum[np.maximum(self.start - 1, 0)], 0.0)
        self.lo = lo
        self.hi = np.where(self.end > 0, self.cum[np.maximum(self.end - 1, 0)], 0.0)
        self.nonempty = self.end > self.start

    def sample(self, rng, groups):
        """One item index per group id; groups must be non-empty."""
        u = rng.random(groups.shape)
        x = self.lo[groups] + u * (self.hi[groups] - self.lo[groups])
        pos = np.searchsorted(self.cum, x, "right")
        pos = np.clip(pos, self.start[groups], self.end[groups] - 1)
        return self.order[pos]


@dataclass(eq=False)
class Request:
    """One feed request: the user context, the candidates' raw item records and
    the candidate metadata, as a serving process would see them.

    ``items`` are plain-Python dicts (copies of the item store's records);
    ``candidates`` holds ``source`` (int64), ``source_score`` (float64) and
    ``source_rank`` (int64), parallel to ``items``.  ``hidden`` is simulator
    ground truth (world indices, true contact/view state) used by
    ``Marketplace.relevance``; it is not part of the data contract.
    """

    request_id: int
    user: dict
    items: list
    candidates: dict
    hidden: dict = field(default_factory=dict, repr=False)

    @property
    def user_blob(self) -> bytes:
        """The user context as MessagePack bytes."""
        return msgpack.packb(self.user, use_bin_type=True)

    @property
    def item_blobs(self) -> list:
        """The item records as MessagePack bytes, one per candidate."""
        packb = msgpack.Packer(use_bin_type=True).pack
        return [packb(it) for it in self.items]

    @property
    def item_ids(self) -> np.ndarray:
        """Candidate item ids (int64)."""
        return np.fromiter((it["id"] for it in self.items), dtype=np.int64, count=len(self.items))

    @property
    def now(self) -> int:
        """Request time (unix seconds)."""
        return self.user["now"]

    def __len__(self):
        return len(self.items)


class Marketplace:
    """A deterministic synthetic marketplace (see the module docstring).

    Parameters: ``seed`` (non-negative int), world size (``n_items``,
    ``n_users``, ``n_sellers``, default ``n_items // 8``) and ``now``, the
    world's reference time in unix seconds: every item is created before it
    and request ``i`` happens at ``now + 60 * i``.
    """

    def __init__(self, seed: int = 0, n_items: int = 50_000, n_users: int = 5_000,
                 n_sellers: int | None = None, now: int = DEFAULT_NOW):
        seed = int(seed)
        if seed < 0:
            raise ValueError("seed must be a non-negative integer")
        if n_items < 1 or n_users < 1:
            raise ValueError("n_items and n_users must be positive")
        self.seed = seed
        self.n_items = int(n_items)
        self.n_users = int(n_users)
        self.n_sellers = int(n_sellers) if n_sellers is not None else max(1, self.n_items // 8)
        if self.n_sellers < 1:
            raise ValueError("n_sellers must be positive")
        self.now = int(now)
        streams = np.random.SeedSequence(seed, spawn_key=(0,)).spawn(6)
        rngs = [np.random.default_rng(s) for s in streams]
        self._build_catalogue(rngs[0])
        self._build_geography()
        self._build_sellers(rngs[1])
        self._build_items(rngs[2])
        self._build_titles(rngs[3])
        self._build_users(rngs[4])
        self._build_samplers()
        self._records = [None] * self.n_items
        self._built = np.zeros(self.n_items, dtype=bool)

    # ------------------------------------------------------------------ world

    def _build_catalogue(self, rng):
        nc = len(_CATEGORIES)
        self.category_ids = np.arange(1, nc + 1, dtype=np.int64)
        # Skewed category popularity: a typical classifieds mix, jittered per world.
        pop = np.array([s["pop"] for s in _CATEGORIES]) * np.exp(rng.normal(0.0, 0.3, size=nc))
        self.category_pop = pop / pop.sum()
        n_sub_per = rng.integers(3, 11, size=nc)
        sub_cat, sub_nouns, sub_logmu, sub_pop = [], [], [], []
        for c, spec in enumerate(_CATEGORIES):
            ns = int(n_sub_per[c])
            nn = len(spec["nouns"])
            w = rng.gamma(0.8, size=ns) + 0.05
            w /= w.sum()
            shifts = rng.normal(0.0, 0.45, size=ns)
            for k in range(ns):
                nouns = [j for j in range(nn) if j % ns == k] or [k % nn]
                sub_cat.append(c)
                sub_nouns.append(nouns)
                sub_logmu.append(np.log(spec["median"]) + shifts[k])
                sub_pop.append(w[k] * self.category_pop[c])
        self.n_sub = len(sub_cat)
        self.sub_cat = np.array(sub_cat, dtype=np.int64)       # subcategory index -> category index
        self.subcategory_ids = 100 + np.arange(self.n_sub, dtype=np.int64) * 7 + self.sub_cat
        self._sub_nouns = sub_nouns
        self.sub_logmu = np.array(sub_logmu)
        self.sub_pop = np.array(sub_pop) / np.sum(sub_pop)
        self.sub_start = np.searchsorted(self.sub_cat, np.arange(nc), "left")
        self.cat_sigma = np.array([s["sigma"] for s in _CATEGORIES])
        self.cat_free = np.array([s["free"] for s in _CATEGORIES])
        self.cat_new = np.array([s["new"] for s in _CATEGORIES])
        # Brand premium per (category, brand).
        self._brand_shift = [rng.normal(0.0, 0.35, size=max(1, len(s["brands"]))) for s in _CATEGORIES]
        self._words = [
            dict(nouns=[w.split("|") for w in s["nouns"]], adjs=[w.split("|") for w in s["adjs"]],
                 brands=s["brands"], num=s["num"])
            for s in _CATEGORIES
        ]

    def _build_geography(self):
        self.region_ids = np.arange(1, len(_REGIONS) + 1, dtype=np.int64)
        w = np.array([r[1] for r in _REGIONS])
        self.region_pop = w / w.sum()
        self.region_tz = np.array([r[2] for r in _REGIONS], dtype=np.int64)
        city_region, city_lat, city_lon, city_w, city_sigma = [], [], [], [], []
        for r, (_, _, _, cities) in enumerate(_REGIONS):
            for k, (_, lat, lon) in enumerate(cities):
                city_region.append(r)
                city_lat.append(lat)
                city_lon.append(lon)
                city_w.append(1.0 / (1 + 2.5 * k))   # the first city dominates its region
                city_sigma.append(5.0 if k == 0 else 2.5)  # km
        self.city_region = np.array(city_region, dtype=np.int64)
        self.city_ids = 1000 + np.arange(len(city_region), dtype=np.int64) * 3 + self.city_region
        self.city_lat = np.array(city_lat)
        self.city_lon = np.array(city_lon)
        self.city_sigma = np.array(city_sigma)
        self._city_w = np.array(city_w)
        self.region_city_start = np.searchsorted(self.city_region, np.arange(len(_REGIONS)), "left")
        self.region_city_end = np.searchsorted(self.city_region, np.arange(len(_REGIONS)), "right")

    def _draw_places(self, rng, n, far_share=0.05):
        region = rng.choice(len(_REGIONS), size=n, p=self.region_pop)
        city = np.empty(n, dtype=np.int64)
        u = rng.random(n)
        for r in range(len(_REGIONS)):
            m = region == r
            s, e = self.region_city_start[r], self.region_city_end[r]
            cw = np.cumsum(self._city_w[s:e])
            city[m] = s + np.searchsorted(cw / cw[-1], u[m], "right").clip(0, e - s - 1)
        sigma = self.city_sigma[city] * np.where(rng.random(n) < far_share, 5.0, 1.0)
        lat = self.city_lat[city] + rng.normal(size=n) * sigma / 111.0
        lon = self.city_lon[city] + rng.normal(size=n) * sigma / (111.0 * np.cos(np.radians(self.city_lat[city])))
        return region, city, np.round(lat, 6), np.round(lon, 6)

    def _build_sellers(self, rng):
        n = self.n_sellers
        self.seller_ids = 20_000_000 + np.cumsum(rng.integers(1, 500, size=n))
        self.seller_region, self.seller_city, self.seller_lat, self.seller_lon = self._draw_places(rng, n, 0.1)
        self.seller_company = rng.random(n) < 0.2
        self.seller_quality = rng.normal(size=n)
        # Heavy-tailed size: companies list many more items.
        self.seller_size = np.minimum(rng.pareto(1.5, size=n) + 1.0, 150.0)
        self.seller_size *= np.where(self.seller_company, 4.0, 1.0)
        self.seller_main_cat = rng.choice(len(_CATEGORIES), size=n, p=self.category_pop)
        rev = np.floor(np.exp(rng.normal(2.0, 1.5, size=n)) * np.where(self.seller_company, 4.0, 1.0))
        rev[rng.random(n) < 0.25] = 0
        self.seller_reviews = rev.astype(np.int64)
        rating = 4.4 + 0.45 * self.seller_quality + rng.normal(0, 0.25, size=n)
        rating += 2.0 / (1.0 + self.seller_reviews) * rng.normal(0, 0.6, size=n)
        self.seller_rating = np.round(np.clip(rating, 1.0, 5.0), 1)

    def _build_items(self, rng):
        n = self.n_items
        nc = len(_CATEGORIES)
        w = self.seller_size / self.seller_size.sum()
        seller = rng.choice(self.n_sellers, size=n, p=w)
        counts = np.bincount(seller, minlength=self.n_sellers)
        self.seller_active_items = counts.astype(np.int64)
        company = self.seller_company[seller]
        # Category: the seller's speciality (companies mostly) or anything.
        spec = rng.random(n) < np.where(company, 0.85, 0.35)
        cat = np.where(spec, self.seller_main_cat[seller], rng.choice(nc, size=n, p=self.category_pop))
        sub = np.empty(n, dtype=np.int64)
        u = rng.random(n)
        for c in range(nc):
            m = cat == c
            s = self.sub_start[c]
            e = self.sub_start[c + 1] if c + 1 < nc else self.n_sub
            cw = np.cumsum(self.sub_pop[s:e])
            sub[m] = s + np.searchsorted(cw / cw[-1], u[m], "right").clip(0, e - s - 1)
        # Location: the seller's city (95%) around which the item is scattered.
        moved = rng.random(n) < 0.05
        region = self.seller_region[seller].copy()
        city = self.seller_city[seller].copy()
        if moved.any():
            r2, c2, _, _ = self._draw_places(rng, int(moved.sum()))
            region[moved], city[moved] = r2, c2
        sigma = self.city_sigma[city] * np.where(rng.random(n) < 0.07, 5.0, 1.0)
        lat = self.city_lat[city] + rng.normal(size=n) * sigma / 111.0
        lon = self.city_lon[city] + rng.normal(size=n) * sigma / (111.0 * np.cos(np.radians(self.city_lat[city])))
        # Age: minutes to 90 days, skewed young.
        age = 120 + np.floor(rng.beta(0.55, 1.7, size=n) * 90 * DAY)
        created = self.now - age.astype(np.int64)
        upd = created + np.floor((self.now - created) * rng.random(n) ** 2).astype(np.int64)
        attract = rng.normal(size=n)
        is_new = rng.random(n) < np.clip(self.cat_new[cat] + np.where(company, 0.4, 0.0), 0, 0.97)
        is_new &= self.cat_new[cat] > 0  # services have no condition-new
        # Brand token (if the category has brands) and price.
        n_br = np.array([len(s["brands"]) for s in _CATEGORIES])
        brand = np.floor(rng.random(n) * np.maximum(n_br[cat], 1)).astype(np.int64)
        bshift = np.array([self._brand_shift[c][b] for c, b in zip(cat.tolist(), brand.tolist())]) \
            if n else np.empty(0)
        logp = self.sub_logmu[sub] + bshift + np.where(is_new, 0.3, 0.0) + 0.1 * attract \
            + rng.normal(size=n) * self.cat_sigma[cat]
        price = _nice_price(np.exp(logp))
        psych = rng.random(n) < 0.15
        price = np.where(psych & (price >= 100), price - np.where(price >= 100_000, 1000, 1), price)
        free = rng.random(n) < self.cat_free[cat]
        price = np.where(free, 0.0, price)
        price_float = rng.random(n) < 0.25
        cents = price_float & (rng.random(n) < 0.3) & (price > 0) & (price < 100_000)
        price = np.where(cents, price - 0.01 * rng.integers(1, 100, size=n), price)
        price = np.round(price, 2)
        # Old price: drops (80%) or raises.
        has_old = (rng.random(n) < 0.15) & (price > 0)
        drop = rng.random(n) < 0.8
        factor = np.where(drop, 1.0 / (1.0 - rng.uniform(0.05, 0.4, size=n)), rng.uniform(0.7, 0.95, size=n))
        old = np.round(_nice_price(price * factor), 2)
        old = np.where(old == price, old + np.where(drop, 100.0, -1.0), old)
        old = np.maximum(old, 1.0)
        # Content quality.
        photos = np.minimum(20, rng.poisson(np.exp(1.3 + 0.35 * attract + 0.4 * company)))
        photos[rng.random(n) < _sigmoid(-2.5 - 0.8 * attract)] = 0
        desc = np.floor(np.exp(rng.normal(np.log(250) + 0.3 * attract + 0.4 * company, 0.9, size=n)))
        desc = np.minimum(desc, 9000).astype(np.int64)
        desc[rng.random(n) < 0.03] = 0
        has_video = rng.random(n) < np.where(company, 0.18, 0.05)
        delivery = rng.random(n) < np.where(company, 0.8, 0.35)
        vas = rng.choice(5, size=n, p=_VAS_P)
        vas = np.where(company & (vas == 0) & (rng.random(n) < 0.15), rng.integers(1, 5, size=n), vas)
        # Popularity: heavy-tailed impressions, views <= impressions, contacts/favorites << views.
        age_days = age / DAY
        pop_latent = 0.6 * attract + 0.9 * rng.normal(size=n) + 2.0 * np.log(self.category_pop[cat] * nc)
        window = np.minimum(age_days, 7.0) / 7.0
        lam = 80.0 * np.exp(1.1 * pop_latent) * (0.15 + window) * _VAS_BOOST[vas]
        impressions = rng.poisson(np.minimum(lam, 5e6))
        ctr = _sigmoid(-2.8 + 0.45 * attract + 0.15 * np.log1p(photos) - 0.5 * (photos == 0))
        views = rng.binomial(impressions, ctr)
        contacts = rng.binomial(views, _sigmoid(-3.3 + 0.3 * attract - 0.0 * company))
        favorites = rng.binomial(views, _sigmoid(-3.0 + 0.2 * attract))
        older = np.maximum(age_days - 7.0, 0.0) / 7.0
        views_total = views + rng.poisson(views * older * 0.6)
        # Ids increase with creation time.
        order = np.argsort(created, kind="stable")
        ids = np.empty(n, dtype=np.int64)
        ids[order] = 3_100_000_000 + np.cumsum(rng.integers(1, 40, size=n))
        # Which optional keys each record carries.
        miss = {k: rng.random(n) < p for k, p in _ITEM_MISSING.items()}
        counters_off = miss["counters"]
        self._present = {
            "old_price": has_old,
            "description_len": ~miss["description_len"],
            "city": ~miss["city"],
            "latlon": ~miss["latlon"],
            "updated_at": ~miss["updated_at"],
            "seller_rating": (self.seller_reviews[seller] > 0) & ~miss["seller_rating"],
            "seller_reviews": ~miss["seller_reviews"],
            "seller_active_items": ~miss["seller_active_items"],
            "seller_is_company": ~miss["seller_is_company"],
            "photos": ~miss["photos"],
            "has_video": ~miss["has_video"],
            "delivery": ~miss["delivery"],
            "condition": ~miss["condition"] & (self.cat_new[cat] > 0),
            "vas": ~miss["vas"],
        }
        for k in ("impressions_7d", "views_7d", "contacts_7d", "favorites_7d"):
            self._present[k] = ~counters_off & (rng.random(n) >= _ITEM_MISSING["counter"])
        self._present["views_total"] = ~counters_off & ~miss["views_total"]

        self.item_ids = ids
        self._id_index = {v: j for j, v in enumerate(ids.tolist())}
        self.item_seller = seller
        self.item_cat = cat
        self.item_sub = sub
        self.item_region = region
        self.item_city = city
        self.item_lat = np.round(lat, 6)
        self.item_lon = np.round(lon, 6)
        self.item_created = created
        self.item_updated = upd
        self.item_price = price
        self.item_price_float = price_float
        self.item_old_price = old
        self.item_photos = photos.astype(np.int64)
        self.item_desc = desc
        self.item_video = has_video
        self.item_delivery = delivery
        self.item_new = is_new
        self.item_vas = vas.astype(np.int64)
        self.item_impressions = impressions.astype(np.int64)
        self.item_views = views.astype(np.int64)
        self.item_contacts = contacts.astype(np.int64)
        self.item_favorites = favorites.astype(np.int64)
        self.item_views_total = views_total.astype(np.int64)
        self.item_attract = attract
        self.item_brand = brand
        self._item_logp = np.log(np.maximum(price, 1.0))

    def _build_titles(self, rng):
        """Draw the title ingredients (the strings themselves are built lazily)."""
        n = self.n_items
        china = self.item_region == _CHINA_REGION
        u = rng.random(n)
        lang = np.where(china, np.where(u < 0.88, 2, 1), np.where(u < 0.645, 0, np.where(u < 0.965, 1, 2)))
        self._t = dict(
            lang=lang.astype(np.int8),
            tmpl=rng.integers(0, 3, size=n).astype(np.int8),
            noun=rng.integers(0, 1 << 30, size=n),
            noun2=rng.integers(0, 1 << 30, size=n),
            adj=np.where(rng.random(n) < 0.45, rng.integers(0, 1 << 30, size=n), -1),
            brand=rng.random(n) < 0.6,
            num=np.where(rng.random(n) < 0.45, rng.integers(0, 1 << 30, size=n), -1),
            tail=np.where(rng.random(n) < 0.3, rng.integers(0, len(_TAILS), size=n), -1),
            sep=rng.integers(0, 4, size=n).astype(np.int8),
            case=rng.choice(4, size=n, p=[0.8, 0.08, 0.07, 0.05]).astype(np.int8),
            extra=rng.choice(7, size=n, p=[0.84, 0.04, 0.02, 0.02, 0.015, 0.045, 0.02]).astype(np.int8),
            space=rng.random(n) < 0.6,
            empty=rng.random(n) < 0.012,
        )

    def _build_users(self, rng):
        n = self.n_users
        nc = len(_CATEGORIES)
        self.user_ids = 700_000_000 + np.cumsum(rng.integers(1, 2000, size=n))
        self.user_region, self.user_city, self.user_lat, self.user_lon = self._draw_places(rng, n, 0.08)
        self.user_platform = rng.choice(3, size=n, p=[0.2, 0.3, 0.5])
        tz = self.region_tz[self.user_region].copy()
        odd = rng.random(n) < 0.05
        tz[odd] = rng.choice(np.array([0, 60, 120, 180, 240, 300, 420, 480, -300]), size=int(odd.sum()))
        self.user_tz = tz
        china = self.user_region == _CHINA_REGION
        u = rng.random(n)
        self.user_lang = np.where(china, np.where(u < 0.85, 2, 1), np.where(u < 0.7, 0, np.where(u < 0.95, 1, 2)))
        self.user_has_geo = rng.random(n) < 0.7
        self.user_has_platform = rng.random(n) < 0.95
        self.user_has_tz = rng.random(n) < 0.9
        self.user_has_region = rng.random(n) < 0.92
        self.user_has_city = self.user_has_region & (rng.random(n) < 0.9)
        # Latent preferences: categories, then subcategories within them.
        alpha = 0.3 * nc * self.category_pop
        pc = rng.gamma(np.broadcast_to(alpha, (n, nc))) + 1e-9
        pc /= pc.sum(axis=1, keepdims=True)
        within = rng.gamma(0.6, size=(n, self.n_sub)) + 1e-9
        sums = np.add.reduceat(within, self.sub_start, axis=1)
        within /= sums[:, self.sub_cat]
        self.user_cat_pref = pc
        self.user_sub_pref = pc[:, self.sub_cat] * within
        level = rng.normal(0.0, 0.45, size=n)
        self.user_price_shift = level[:, None] + rng.normal(0.0, 0.25, size=(n, nc))
        self.user_price_tol = 0.55 + 0.35 * rng.random(n)
        self.user_d0 = np.exp(rng.normal(np.log(8.0), 0.6, size=n))
        self.user_local = 0.45 + 0.45 * rng.random(n)
        act = np.exp(rng.normal(3.2, 1.8, size=n))
        act[rng.random(n) < 0.1] = 0.0  # new users
        self.user_activity = act
        w = np.sqrt(act + 5.0)
        self._user_pick = np.cumsum(w / w.sum())

    def _build_samplers(self):
        w = self.item_views.astype(np.float64) + 1.0
        self._pop_w = w
        self._by_sub = _GroupSampler(self.item_sub, w, self.n_sub)
        nr = len(_REGIONS)
        self._by_region_sub = _GroupSampler(self.item_region * self.n_sub + self.item_sub, w, nr * self.n_sub)
        self._any = _GroupSampler(np.zeros(self.n_items, dtype=np.int64), w, 1)
        # Exploration mix for views: the global subcategory popularity of this world.
        counts = np.bincount(self.item_sub, minlength=self.n_sub).astype(np.float64)
        self._sub_global = (counts + 1e-3) / (counts + 1e-3).sum()
        self._sub_nonempty = counts > 0

    # ----------------------------------------------------------- item records

    def _title(self, j, t):
        if t["empty"][j]:
            return ""
        c = int(self.item_cat[j])
        W = self._words[c]
        lang = int(t["lang"][j])
        nouns = self._sub_nouns[self.item_sub[j]]
        noun = W["nouns"][nouns[t["noun"][j] % len(nouns)]]
        adj = W["adjs"][t["adj"][j] % len(W["adjs"])][lang] if t["adj"][j] >= 0 else ""
        brand = W["brands"][self.item_brand[j]] if (t["brand"][j] and W["brands"]) else ""
        nv = W["num"]
        num = nv[1 + lang].format(nv[0][t["num"][j] % len(nv[0])]) if t["num"][j] >= 0 else ""
        tail_i = int(t["tail"][j])
        if tail_i in (0, 1):
            tail_i = 1 if self.item_new[j] else 0
        tail = _TAILS[tail_i][lang] if tail_i >= 0 else ""
        tmpl = int(t["tmpl"][j])
        extra = int(t["extra"][j])
        if lang == 2:
            parts = [brand, noun[2], adj, num, tail] if tmpl == 1 else [tail, brand, noun[2], adj, num]
            if extra == 6:  # a second noun of the category, e.g. "二手 自行车 山地车"
                parts.insert(2, W["nouns"][t["noun2"][j] % len(W["nouns"])][2])
            s = (" " if t["space"][j] else "").join(p for p in parts if p)
        else:
            nn = noun[lang]
            if tmpl == 1 and brand:
                parts = [brand, num, nn if lang == 1 else ""]
                s = " ".join(p for p in parts if p)
                if adj:
                    s += ", " + adj
            elif tmpl == 2 and adj:
                s = " ".join(p for p in (adj, nn, brand, num) if p)
            elif lang == 0:
                s = " ".join(p for p in (nn, adj, brand, num) if p)
            else:
                s = " ".join(p for p in (adj, brand, nn, num) if p)
            if tail:
                sep = int(t["sep"][j])
                s = s + (" " + tail, ", " + tail, " - " + tail, " (" + tail + ")")[sep]
            if s and not (brand and s.startswith(brand)):  # keep "iPhone", not "IPhone"
                s = s[0].upper() + s[1:]
        if extra in (1, 2, 3):  # a word in another script
            other = (1, 0, 2)[extra - 1]
            if other == lang:
                other = (lang + 1) % 3
            s += (" (" + noun[other] + ")") if other == 1 else (" " + noun[other])
        elif extra == 4:
            s = "🔥 " + s
        elif extra == 5:
            s += "!" if t["sep"][j] % 2 else "!!!"
        case = int(t["case"][j])
        if case == 1:
            s = s.upper()
        elif case == 2:
            s = s.lower()
        elif case == 3 and lang == 1:
            s = s.title()
        return s

    def _ensure_records(self, idx):
        idx = np.asarray(idx, dtype=np.int64)
        need = idx[~self._built[idx]]
        if need.size == 0:
            return
        need = np.unique(need)
        P = {k: v[need].tolist() for k, v in self._present.items()}
        sel = self.item_seller[need]
        cols = dict(
            id=self.item_ids[need].tolist(),
            category=self.category_ids[self.item_cat[need]].tolist(),
            subcategory=self.subcategory_ids[self.item_sub[need]].tolist(),
            price=self.item_price[need].tolist(),
            pfloat=self.item_price_float[need].tolist(),
            created_at=self.item_created[need].tolist(),
            seller_id=self.seller_ids[sel].tolist(),
            region=self.region_ids[self.item_region[need]].tolist(),
            old_price=self.item_old_price[need].tolist(),
            description_len=self.item_desc[need].tolist(),
            city=self.city_ids[self.item_city[need]].tolist(),
            lat=self.item_lat[need].tolist(),
            lon=self.item_lon[need].tolist(),
            updated_at=self.item_updated[need].tolist(),
            seller_rating=self.seller_rating[sel].tolist(),
            seller_reviews=self.seller_reviews[sel].tolist(),
            seller_active_items=self.seller_active_items[sel].tolist(),
            seller_is_company=self.seller_company[sel].tolist(),
            photos=self.item_photos[need].tolist(),
            has_video=self.item_video[need].tolist(),
            delivery=self.item_delivery[need].tolist(),
            condition=self.item_new[need].tolist(),
            vas=self.item_vas[need].tolist(),
            impressions_7d=self.item_impressions[need].tolist(),
            views_7d=self.item_views[need].tolist(),
            contacts_7d=self.item_contacts[need].tolist(),
            favorites_7d=self.item_favorites[need].tolist(),
            views_total=self.item_views_total[need].tolist(),
        )
        plain = ("description_len", "city", "updated_at", "seller_rating", "seller_reviews",
                 "seller_active_items", "seller_is_company", "photos", "has_video", "delivery")
        counters = ("impressions_7d", "views_7d", "contacts_7d", "favorites_7d", "views_total")
        t = self._t
        for k, j in enumerate(need.tolist()):
            p = cols["price"][k]
            rec = {
                "id": cols["id"][k],
                "title": self._title(j, t),
                "category": cols["category"][k],
                "subcategory": cols["subcategory"][k],
                "price": float(p) if cols["pfloat"][k] else int(round(p)),
                "created_at": cols["created_at"][k],
                "seller_id": cols["seller_id"][k],
                "region": cols["region"][k],
            }
            if P["old_price"][k]:
                rec["old_price"] = float(cols["old_price"][k])
            for key in plain[:2]:
                if P[key][k]:
                    rec[key] = cols[key][k]
            if P["latlon"][k]:
                rec["lat"] = cols["lat"][k]
                rec["lon"] = cols["lon"][k]
            for key in plain[2:]:
                if P[key][k]:
                    rec[key] = cols[key][k]
            if P["condition"][k]:
                rec["condition"] = "new" if cols["condition"][k] else "used"
            if P["vas"][k]:
                rec["vas"] = VAS_LEVELS[cols["vas"][k]]
            for key in counters:
                if P[key][k]:
                    rec[key] = cols[key][k]
            self._records[j] = rec
        self._built[need] = True

    def index_of(self, item_id: int) -> int:
        """World index of an item id (raises KeyError for unknown ids)."""
        return self._id_index[int(item_id)]

    def item(self, item_id: int) -> dict:
        """The item record (a fresh copy of the store's dict) for an item id."""
        j = self.index_of(item_id)
        self._ensure_records([j])
        record = self._records[j]
        assert record is not None  # filled by _ensure_records
        return dict(record)

    def item_records(self, ids=None) -> list:
        """Item records (fresh dict copies) for the given ids, or for all items."""
        idx = np.arange(self.n_items) if ids is None else np.array([self.index_of(i) for i in ids], dtype=np.int64)
        self._ensure_records(idx)
        return [dict(self._records[j]) for j in idx.tolist()]

    def items_blobs(self, ids=None) -> list:
        """MessagePack blobs of the item records for the given ids (all items if None),
        exactly as the item store would hold them."""
        idx = np.arange(self.n_items) if ids is None else np.array([self.index_of(i) for i in ids], dtype=np.int64)
        self._ensure_records(idx)
        packb = msgpack.Packer(use_bin_type=True).pack
        recs = self._records
        return [packb(recs[j]) for j in idx.tolist()]

    # --------------------------------------------------------------- requests

    def _rng(self, kind, i):
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(kind, int(i))))

    def _query(self, rng, u, sub):
        lang = int(self.user_lang[u]) if rng.random() < 0.85 else int(rng.integers(0, 3))
        c = int(self.sub_cat[sub])
        W = self._words[c]
        nouns = self._sub_nouns[sub]
        noun = W["nouns"][nouns[int(rng.integers(len(nouns)))]][lang]
        form = int(rng.integers(0, 5))
        brand = W["brands"][int(rng.integers(len(W["brands"])))] if W["brands"] else ""
        if form == 0 or (form in (1, 2) and not brand):
            q = noun
        elif form == 1:
            q = brand.lower() if rng.random() < 0.7 else brand
        elif form == 2:
            q = (brand + (" " if lang < 2 else "") + noun) if lang == 2 else (noun + " " + brand)
        elif form == 3:
            q = _QUERY_PREFIX[lang] + noun if lang < 2 else "二手" + noun
        else:
            adj = W["adjs"][int(rng.integers(len(W["adjs"])))][lang]
            q = adj + (" " if lang < 2 else "") + noun
        return q.lower() if rng.random() < 0.8 else q

    def _history(self, rng, u, now):
        """Views, contacts, favorites and impressions of user u before `now`."""
        act = self.user_activity[u]
        n_v = 0 if act == 0 else int(min(MAX_VIEWS, rng.poisson(act * rng.gamma(3.0, 1 / 3.0))))
        sub_mix = 0.88 * self.user_sub_pref[u] + 0.12 * self._sub_global
        sub_mix = np.where(self._sub_nonempty, sub_mix, 0.0)
        sub_mix /= sub_mix.sum()
        cum_mix = np.cumsum(sub_mix)
        if n_v > 0:
            # Timestamps in sessions, recency-skewed, strictly increasing offsets.
            L = 6.0
            n_s = max(1, int(np.ceil(n_v / L)))
            starts = np.floor(rng.beta(1.0, 1.6, size=n_s) * (HISTORY_DAYS * DAY - 6 * 3600)) + 1
            sess = rng.integers(0, n_s, size=n_v)
            off = np.sort(starts[sess] + np.floor(rng.random(n_v) * 1800)).astype(np.int64)
            ar = np.arange(n_v, dtype=np.int64)
            off = np.maximum.accumulate(off - ar) + ar
            ts = now - off  # newest first
            # Items: interest -> subcategory; region bias; K proposals resampled by
            # price fit and distance, created before the view.
            subs = np.searchsorted(cum_mix, rng.random(n_v) * cum_mix[-1], "right").clip(0, self.n_sub - 1)
            K = 4
            subs_k = np.repeat(subs, K)
            local = np.repeat(rng.random(n_v) < self.user_local[u], K)
            g2 = self.user_region[u] * self.n_sub + subs_k
            use_local = local & self._by_region_sub.nonempty[g2]
            prop = self._by_sub.sample(rng, subs_k)
            if use_local.any():
                prop[use_local] = self._by_region_sub.sample(rng, g2[use_local])
            prop = prop.reshape(n_v, K)
            w = self._affinity(u, prop, use_delivery=False)
            w = np.where(self.item_created[prop] < ts[:, None] - 30, w, 0.0)
            cw = np.cumsum(w, axis=1)
            ok = cw[:, -1] > 0
            pick = (cw < (rng.random(n_v) * cw[:, -1])[:, None]).sum(axis=1).clip(0, K - 1)
            items = prop[np.arange(n_v), pick][ok]
            ts = ts[ok]
        else:
            items = np.empty(0, dtype=np.int64)
            ts = np.empty(0, dtype=np.int64)
        n_v = items.size
        # Contacts: a small share of viewed items, more for well-fitting ones.
        if n_v:
            fit = self._affinity(u, items, use_delivery=True)
            pc = np.clip(0.02 * fit / (fit.mean() + 1e-12), 0, 0.3)
            hit = rng.random(n_v) < pc
            c_items, first = np.unique(items[hit], return_index=True)
            c_view_ts = ts[hit][first]  # newest view of that item (rows are newest first)
            c_ts = np.minimum(c_view_ts + rng.integers(10, 900, size=c_items.size), now - 1)
            o = np.argsort(-c_ts, kind="stable")
            c_items, c_ts = c_items[o], c_ts[o]
            uniq, first_v = np.unique(items, return_index=True)
            fav = uniq[rng.random(uniq.size) < 0.04]
            fav_ts = ts[first_v][np.isin(uniq, fav)]
            fav = fav[np.argsort(-fav_ts, kind="stable")]
        else:
            c_items = np.empty(0, dtype=np.int64)
            c_ts = np.empty(0, dtype=np.int64)
            fav = np.empty(0, dtype=np.int64)
            uniq = np.empty(0, dtype=np.int64)
        # Impressions: viewed items and others shown in the feed before.
        n_extra = int(min(1500, rng.poisson(2.0 * uniq.size + 10)))
        subs = np.searchsorted(cum_mix, rng.random(n_extra) * cum_mix[-1], "right").clip(0, self.n_sub - 1)
        shown = self._by_sub.sample(rng, subs)
        imp_items = np.concatenate([uniq, shown])
        imp_cnt = np.concatenate([1 + rng.poisson(1.0, size=uniq.size), rng.geometric(0.6, size=n_extra)])
        imp_items, inv = np.unique(imp_items, return_inverse=True)
        imp_cnt = np.bincount(inv, weights=imp_cnt, minlength=imp_items.size).astype(np.int64)
        return dict(v_items=items, v_ts=ts, c_items=c_items, c_ts=c_ts, fav=fav,
                    imp_items=imp_items, imp_cnt=imp_cnt)

    def _affinity(self, u, idx, use_delivery):
        """Hidden user-item fit from interest-free parts: price fit x distance."""
        cat = self.item_cat[idx]
        mu = self.sub_logmu[self.item_sub[idx]] + self.user_price_shift[u, cat]
        z = (self._item_logp[idx] - mu) / self.user_price_tol[u]
        z = np.where(self.item_price[idx] > 0, z, 0.0)
        d = _haversine_km(self.user_lat[u], self.user_lon[u], self.item_lat[idx], self.item_lon[idx])
        dist_pen = np.log1p(d / self.user_d0[u])
        if use_delivery:
            dist_pen = dist_pen * np.where(self.item_delivery[idx], 0.5, 1.0)
        return np.exp(-0.5 * z * z - 0.6 * dist_pen)

    def _interests(self, rng, u):
        pc = self.user_cat_pref[u] * np.exp(rng.normal(0, 0.3, size=len(_CATEGORIES)))
        pc = pc / pc.max()
        keep = np.flatnonzero(pc > 0.03)
        keep = keep[np.argsort(-pc[keep], kind="stable")][:10]
        interests = {int(self.category_ids[c]): round(float(pc[c]), 4) for c in keep.tolist()}
        ps = self.user_sub_pref[u] * np.exp(rng.normal(0, 0.35, size=self.n_sub))
        ps = ps / ps.max()
        keep_s = np.flatnonzero(ps > 0.05)
        keep_s = keep_s[np.argsort(-ps[keep_s], kind="stable")][:30]
        sub_interests = {int(self.subcategory_ids[s]): round(float(ps[s]), 4) for s in keep_s.tolist()}
        vis_cat = np.zeros(len(_CATEGORIES))
        vis_cat[keep] = pc[keep]
        vis_sub = np.zeros(self.n_sub)
        vis_sub[keep_s] = ps[keep_s]
        return interests, sub_interests, vis_cat, vis_sub

    def request(self, i: int, n_candidates: int = 3000) -> Request:
        """Request number ``i``: a user context and ``n_candidates`` distinct candidates.

        Deterministic in ``(seed, i)`` and independent of any other call.  The
        request time is ``now + 60 * i``.
        """
        i = int(i)
        if i < 0:
            raise ValueError("request number must be non-negative")
        n_candidates = int(n_candidates)
        if not 1 <= n_candidates <= self.n_items:
            raise ValueError(f"n_candidates must be in [1, {self.n_items}], got {n_candidates}")
        rng = self._rng(1, i)
        u = int(np.searchsorted(self._user_pick, rng.random() * self._user_pick[-1], "right"))
        u = min(u, self.n_users - 1)
        now = self.now + 60 * i
        h = self._history(rng, u, now)
        interests, sub_interests, vis_cat, vis_sub = self._interests(rng, u)
        n_q = 0 if self.user_activity[u] == 0 else int(min(20, rng.poisson(self.user_activity[u] ** 0.4)))
        qsubs = np.searchsorted(np.cumsum(self.user_sub_pref[u]), rng.random(n_q), "right").clip(0, self.n_sub - 1)
        queries = [self._query(rng, u, int(s)) for s in qsubs.tolist()]

        user: dict[str, Any] = {"user_id": int(self.user_ids[u]), "now": now}
        if self.user_has_platform[u]:
            user["platform"] = _PLATFORMS[self.user_platform[u]]
        if self.user_has_tz[u]:
            user["tz_offset_min"] = int(self.user_tz[u])
        if self.user_has_region[u]:
            user["region"] = int(self.region_ids[self.user_region[u]])
        if self.user_has_city[u]:
            user["city"] = int(self.city_ids[self.user_city[u]])
        if self.user_has_geo[u]:
            user["lat"] = float(self.user_lat[u])
            user["lon"] = float(self.user_lon[u])
        miss = {k: rng.random() < p for k, p in _USER_MISSING.items()}
        new_user = self.user_activity[u] == 0
        if not miss["interests"] and not new_user:
            user["interests"] = interests
        else:
            vis_cat = None
        if not miss["sub_interests"] and not new_user:
            user["sub_interests"] = sub_interests
        else:
            vis_sub = None
        v = h["v_items"]
        if not miss["views"]:
            self._ensure_records(v)
            rec = self._records
            user["views"] = [
                [iid, t, c, s, rec[j]["price"], sid]
                for j, iid, t, c, s, sid in zip(
                    v.tolist(), self.item_ids[v].tolist(), h["v_ts"].tolist(),
                    self.category_ids[self.item_cat[v]].tolist(),
                    self.subcategory_ids[self.item_sub[v]].tolist(),
                    self.seller_ids[self.item_seller[v]].tolist())
            ]
            vis_views = v
        else:
            vis_views = None
        if not miss["contacts"]:
            c = h["c_items"]
            user["contacts"] = [list(r) for r in zip(self.item_ids[c].tolist(), h["c_ts"].tolist(),
                                                     self.seller_ids[self.item_seller[c]].tolist())]
        if not miss["favorites"]:
            user["favorites"] = self.item_ids[h["fav"]].tolist()
        if not miss["impressions"]:
            user["impressions"] = dict(zip(self.item_ids[h["imp_items"]].tolist(), h["imp_cnt"].tolist()))
        if not miss["queries"]:
            user["queries"] = queries

        idx, src, score, rank = self._candidates(rng, u, user, n_candidates, vis_cat, vis_sub, vis_views)
        self._ensure_records(idx)
        rec = self._records
        items = [dict(rec[j]) for j in idx.tolist()]
        hidden = dict(
            user_index=u,
            item_index=idx,
            contacted=np.isin(idx, h["c_items"]),
            viewed=np.isin(idx, v),
            shown=self._lookup_counts(idx, h["imp_items"], h["imp_cnt"]),
        )
        return Request(request_id=i, user=user, items=items,
                       candidates={"source": src, "source_score": score, "source_rank": rank},
                       hidden=hidden)

    def requests(self, n: int, start: int = 0, n_candidates: int = 3000):
        """Iterate over requests ``start .. start + n - 1``."""
        for i in range(start, start + n):
            yield self.request(i, n_candidates)

    @staticmethod
    def _lookup_counts(idx, keys_sorted, counts):
        if keys_sorted.size == 0:
            return np.zeros(idx.size, dtype=np.int64)
        pos = np.searchsorted(keys_sorted, idx).clip(0, keys_sorted.size - 1)
        return np.where(keys_sorted[pos] == idx, counts[pos], 0)

    # ------------------------------------------------------------ candidates

    def _candidates(self, rng, u, user, n, vis_cat, vis_sub, vis_views):
        """Eight first-level generators, merged without duplicates."""
        N = self.n_items
        share = rng.dirichlet(_SOURCE_SHARE * 60)
        quota = np.maximum(1, np.round(share * n)).astype(np.int64)
        age_h = (user["now"] - self.item_created) / 3600.0
        logpop = np.log1p(self.item_views)
        g = rng.gumbel
        lists = {}  # generator -> (ranked indices, the generator's scores)

        def add(gen, keys, k):
            # A generator ranks by its own noisy estimate; the noise is its model error.
            top = _topk(keys, k)
            if top.size:
                lists[gen] = (top, keys[top])

        # 0 popular: by 7-day views and contacts.
        add(0, logpop + 0.3 * np.log1p(self.item_contacts) + 0.1 * g(size=N), 3 * quota[0])
        # 1 category interest x popularity.
        if vis_cat is not None and vis_cat.any():
            ci = vis_cat[self.item_cat]
            keys = np.where(ci > 0, np.log(np.maximum(ci, 1e-12)) + 0.5 * logpop, -np.inf)
            add(1, keys + 0.1 * g(size=N), 3 * quota[1])
        # 2 collaborative: subcategory interest x a learned (noisy) item quality.
        if vis_sub is not None and vis_sub.any():
            si = vis_sub[self.item_sub]
            est = 0.35 * self.item_attract + 0.2 * logpop
            keys = np.where(si > 0, np.log(np.maximum(si, 1e-12)) + est, -np.inf)
            add(2, keys + 0.1 * g(size=N), 3 * quota[2])
        # 3 nearby: by distance when the location is known, else the user's region.
        if "lat" in user:
            d = _haversine_km(user["lat"], user["lon"], self.item_lat, self.item_lon)
            add(3, -np.log1p(d) + 0.1 * g(size=N), 3 * quota[3])
        elif "region" in user:
            keys = np.where(self.item_region == self.user_region[u], 0.3 * logpop, -np.inf)
            add(3, keys + 0.1 * g(size=N), 3 * quota[3])
        # 4 item2item: subcategories and prices of the recent views.
        if vis_views is not None and vis_views.size:
            rv = vis_views[:50]
            wts = 0.95 ** np.arange(rv.size)
            sw = np.bincount(self.item_sub[rv], weights=wts, minlength=self.n_sub)
            lp = np.bincount(self.item_sub[rv], weights=wts * self._item_logp[rv], minlength=self.n_sub)
            mlp = np.where(sw > 0, lp / np.maximum(sw, 1e-12), 0.0)
            s_sub = sw[self.item_sub]
            sim = np.where(s_sub > 0,
                           np.log(np.maximum(s_sub, 1e-12)) - 1.2 * np.abs(self._item_logp - mlp[self.item_sub])
                           + 0.15 * logpop, -np.inf)
            add(4, sim + 0.1 * g(size=N), 3 * quota[4])
        # 5 fresh: newest items, weighted by interest when known.
        ci = vis_cat[self.item_cat] if vis_cat is not None else np.full(N, 0.3)
        add(5, -age_h / 24.0 + np.log(ci + 0.05) + 0.1 * g(size=N), 3 * quota[5])
        # 6 promoted: paid promotion in the interest categories.
        bid = np.array([0.0, 1.0, 2.0, 5.0, 3.0])[self.item_vas]
        keys = np.where(bid > 0, np.log(np.maximum(bid, 1e-12)) + np.log(ci + 0.1), -np.inf)
        add(6, keys + 0.1 * g(size=N), 3 * quota[6])
        # 7 random exploration (also fills what the others could not).
        lists[7] = (rng.permutation(N), np.sort(rng.random(N))[::-1])

        taken = np.zeros(N, dtype=bool)
        out_i, out_s, out_sc, out_r = [], [], [], []
        total = 0
        for gen in _MERGE_ORDER:
            if gen not in lists:
                continue
            cand, sc = lists[gen]
            want = n - total if gen == 7 else min(int(quota[gen]), n - total)
            if want <= 0:
                continue
            free = np.flatnonzero(~taken[cand])[:want]
            sel = cand[free]
            taken[sel] = True
            out_i.append(sel)
            out_s.append(np.full(sel.size, gen, dtype=np.int64))
            raw = np.asarray(sc, dtype=np.float64)
            lo, hi = (raw.min(), raw.max()) if raw.size else (0.0, 0.0)
            norm = (raw[free] - lo) / (hi - lo) if hi > lo else np.ones(free.size)
            out_sc.append(np.round(_SOURCE_TRUST[gen] * (0.2 + 0.8 * norm), 6))
            out_r.append(np.arange(sel.size, dtype=np.int64))
            total += sel.size
        idx = np.concatenate(out_i)
        src = np.concatenate(out_s)
        score = np.concatenate(out_sc)
        rank = np.concatenate(out_r)
        o = rng.permutation(idx.size)
        return idx[o], src[o], score[o], rank[o]

    # ----------------------------------------------------------- ground truth

    def _hidden(self, req):
        h = req.hidden
        if "item_index" in h:
            return h["user_index"], h["item_index"], h["contacted"], h["viewed"], h["shown"]
        # A request rebuilt from raw data: recover what the records show.
        uid = int(req.user["user_id"])
        u = int(np.searchsorted(self.user_ids, uid))
        if u >= self.n_users or self.user_ids[u] != uid:
            raise KeyError(f"unknown user id {uid}")
        idx = np.array([self.index_of(it["id"]) for it in req.items], dtype=np.int64)
        ids = req.item_ids
        contacted = np.isin(ids, [c[0] for c in req.user.get("contacts", [])])
        viewed = np.isin(ids, [v[0] for v in req.user.get("views", [])])
        imp = req.user.get("impressions", {})
        shown = np.array([imp.get(int(x), 0) for x in ids.tolist()], dtype=np.int64)
        return u, idx, contacted, viewed, shown

    def relevance(self, req: Request) -> np.ndarray:
        """Hidden relevance (click logit) of every candidate of ``req`` (float64).

        A function of the user/item pair that the features see only partially:
        latent subcategory interest, price fit to the user's latent price level,
        distance (halved penalty with delivery), freshness, hidden seller quality
        and item attractiveness, photos, popularity, paid promotion, fatigue from
        earlier impressions, a penalty for already contacted items, and noise
        that depends on ``(seed, request_id)``.
        """
        u, idx, contacted, viewed, shown = self._hidden(req)
        now = int(req.user["now"])
        sub = self.item_sub[idx]
        interest = np.log(self.user_sub_pref[u, sub] * self.n_sub + 0.05)
        cat = self.item_cat[idx]
        mu = self.sub_logmu[sub] + self.user_price_shift[u, cat]
        z = (self._item_logp[idx] - mu) / self.user_price_tol[u]
        price_fit = np.where(self.item_price[idx] > 0, -0.35 * np.minimum(z * z, 9.0), 0.1)
        d = _haversine_km(self.user_lat[u], self.user_lon[u], self.item_lat[idx], self.item_lon[idx])
        dist = -0.45 * np.log1p(d / self.user_d0[u]) * np.where(self.item_delivery[idx], 0.5, 1.0)
        age_days = np.maximum(now - self.item_created[idx], 0) / DAY
        fresh = -0.25 * np.log1p(age_days)
        seller = 0.3 * self.seller_quality[self.item_seller[idx]]
        photos = self.item_photos[idx]
        content = 0.15 * np.log1p(photos) - 0.5 * (photos == 0) + 0.05 * np.log1p(self.item_desc[idx] / 100.0)
        quality = 0.5 * self.item_attract[idx]
        pop = 0.08 * np.log1p(self.item_views[idx])
        promo = 0.3 * (self.item_vas[idx] > 0)
        history = -1.5 * contacted + 0.3 * viewed - 0.15 * np.log1p(shown)
        noise = self._rng(3, req.request_id).normal(0.0, 0.6, size=idx.size)
        return (_REL_BIAS + 0.6 * interest + price_fit + dist + fresh + seller + content + quality
                + pop + promo + history + noise)

    def feedback(self, req: Request):
        """Simulated ``(clicks, contacts)`` (int8 0/1 per candidate) for ``req``.

        Position-independent click model: ``click ~ Bernoulli(sigmoid(relevance))``;
        a contact needs a click and is likelier for more relevant items.
        Deterministic in ``(seed, request_id)``.
        """
        rel = self.relevance(req)
        rng = self._rng(2, req.request_id)
        clicks = rng.random(rel.size) < _sigmoid(rel)
        p_contact = _sigmoid(0.8 * rel - 0.2)
        contacts = clicks & (rng.random(rel.size) < p_contact)
        return clicks.astype(np.int8), contacts.astype(np.int8)
