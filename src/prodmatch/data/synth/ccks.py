"""Synthetic CCKS 2022 task 9.2 data ("same item" pairs) in the competition's exact JSONL formats.

A small world of industries -> 3-level categories -> brands -> models -> spec variants (products)
is listed by several sellers each (items). Titles are Chinese-like word soups with Latin model
numbers, specs, promo words and per-seller noise; pvs strings share and differ in keys; images are
drawn products with per-listing perturbations. Pairs mix positives (same product), hard negatives
(same category and brand: other model, other spec, or other look) and easy ones, and the valid split
holds leaf categories never seen in train, so models can be tested for generalisation without the
real data. Each modality sees something the others cannot: look variants (same model and spec, other
colour and pattern) differ only in the image, spec variants share one image and differ only in text,
and generic sellers' listings (no brand, model, spec or pvs) match their product only by image.
Long because it is mostly vocabulary and drawing rules, not logic.
"""
from __future__ import annotations

import colorsys
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont

from prodmatch.io import write_bytes, write_text

from ._registry import SynthReport, register

INFO_KEYS = ("item_id", "industry_name", "cate_id", "cate_name", "cate_id_path", "cate_name_path",
             "item_image_name", "title", "item_pvs", "sku_pvs")
PAIR_KEYS = ("src_item_id", "tgt_item_id", "item_label")
NEGATIVE_KINDS = ("hard_look", "hard_spec", "hard_model", "same_cate", "easy")
HARD_KINDS = ("hard_look", "hard_spec", "hard_model")
IMAGE_ONLY_KINDS = ("hard_look",)  # negatives whose texts come from one product description
TEXT_ONLY_KINDS = ("hard_spec",)  # negatives whose images are one drawing


@dataclass(frozen=True)
class _Preset:
    n_items: int
    n_leaves: int | None  # None: every leaf of the taxonomy
    train_pairs: int
    valid_pairs: int
    image_px: tuple[int, int]
    valid_item_share: float = 0.27  # of all items
    unseen_item_share: float = 0.08  # of all items, in leaf categories only valid has
    unseen_pair_share: float = 0.25  # of valid pairs
    positive_rate: float = 0.35
    negative_mix: tuple[float, ...] = (0.15, 0.15, 0.3, 0.2, 0.2)  # NEGATIVE_KINDS shares
    look_rate: float = 0.4  # share of models sold in a second look (colour + pattern) with the same texts
    generic_seller_rate: float = 0.12  # sellers whose titles name only the product noun, without pvs


PRESET_CONFIG = {
    "test": _Preset(n_items=150, n_leaves=10, train_pairs=200, valid_pairs=80, image_px=(96, 96),
                    unseen_item_share=0.12),
    "demo": _Preset(n_items=3000, n_leaves=None, train_pairs=4000, valid_pairs=1000, image_px=(160, 224)),
}

# ----------------------------------------------------------------------------------------------
# Vocabulary. Leaf: (cate_name, product nouns (synonyms), drawn shape, spec kind or "").
# ----------------------------------------------------------------------------------------------
_TAXONOMY = (
    ("服饰鞋包", "apparel", (
        ("女装", (("连衣裙", "连衣裙 裙子 长裙 碎花裙", "dress", ""), ("T恤", "T恤 短袖 上衣 体恤", "shirt", ""),
                  ("卫衣", "卫衣 连帽卫衣 外套", "shirt", ""), ("牛仔裤", "牛仔裤 直筒裤 阔腿裤", "pants", ""))),
        ("男装", (("衬衫", "衬衫 长袖衬衫 衬衣", "shirt", ""), ("夹克", "夹克 外套 工装夹克", "shirt", ""),
                  ("休闲裤", "休闲裤 长裤 束脚裤", "pants", ""))),
        ("鞋靴", (("运动鞋", "运动鞋 跑步鞋 休闲鞋 板鞋", "shoe", ""), ("靴子", "靴子 马丁靴 短靴", "shoe", ""))),
        ("箱包", (("双肩包", "双肩包 背包 书包", "bag", ""), ("行李箱", "行李箱 拉杆箱 旅行箱", "box", "inch_bag"))),
    )),
    ("手机数码", "digital", (
        ("手机", (("手机", "手机 智能手机 5G手机", "phone", "storage"),)),
        ("平板电脑", (("平板电脑", "平板电脑 平板 pad", "phone", "storage"),)),
        ("影音", (("蓝牙耳机", "蓝牙耳机 无线耳机 耳机", "earbuds", ""), ("蓝牙音箱", "蓝牙音箱 音响 音箱", "cylinder", ""))),
        ("数码配件", (("充电宝", "充电宝 移动电源", "phone", "battery"), ("数据线", "数据线 充电线 快充线", "cable", "metre"),
                      ("手机壳", "手机壳 保护套 手机套", "phone", ""))),
    )),
    ("美妆个护", "beauty", (
        ("护肤", (("面霜", "面霜 乳霜 保湿霜", "jar", "g"), ("精华液", "精华液 精华 原液", "bottle", "ml"),
                  ("面膜", "面膜 补水面膜 贴片面膜", "bag", "pian"))),
        ("彩妆", (("口红", "口红 唇膏 唇釉", "tube", ""), ("粉底液", "粉底液 粉底 遮瑕粉底", "bottle", "ml"))),
        ("洗护", (("洗发水", "洗发水 洗发露 洗头膏", "bottle", "ml_big"), ("沐浴露", "沐浴露 沐浴乳 沐浴液", "bottle", "ml_big"))),
    )),
    ("食品饮料", "food", (
        ("休闲零食", (("坚果", "坚果 每日坚果 混合坚果", "bag", "g_food"), ("饼干", "饼干 曲奇 苏打饼干", "box", "g_food"),
                      ("牛肉干", "牛肉干 肉干 风干牛肉", "bag", "g_food"))),
        ("饮料冲调", (("矿泉水", "矿泉水 饮用水 天然水", "bottle", "ping"), ("咖啡", "咖啡 速溶咖啡 挂耳咖啡", "box", "tiao"),
                      ("茶叶", "茶叶 绿茶 红茶", "can", "g_food"))),
        ("粮油米面", (("大米", "大米 东北大米 香米", "bag", "kg"),)),
    )),
    ("家居家装", "home", (
        ("床上用品", (("四件套", "四件套 床上用品 床单被套", "box", "bed"), ("枕头", "枕头 枕芯 记忆枕", "pillow", ""))),
        ("收纳整理", (("收纳箱", "收纳箱 整理箱 储物箱", "box", "litre_box"), ("衣架", "衣架 晾衣架 挂衣架", "cable", "ge"))),
        ("灯具", (("台灯", "台灯 护眼台灯 LED台灯", "lamp", ""), ("吸顶灯", "吸顶灯 客厅灯 卧室灯", "jar", "watt_small"))),
    )),
    ("家用电器", "appliance", (
        ("厨房电器", (("电饭煲", "电饭煲 电饭锅 智能电饭煲", "jar", "litre_kitchen"),
                      ("电水壶", "电水壶 烧水壶 热水壶", "kettle", "litre_kitchen"),
                      ("空气炸锅", "空气炸锅 炸锅 无油炸锅", "jar", "litre_kitchen"))),
        ("生活电器", (("吹风机", "吹风机 电吹风 吹风筒", "kettle", "watt"), ("电风扇", "电风扇 落地扇 风扇", "fan", ""),
                      ("吸尘器", "吸尘器 无线吸尘器 手持吸尘器", "cylinder", "watt"))),
        ("大家电", (("电视", "电视 智能电视 液晶电视", "tv", "inch_tv"),)),
    )),
    ("母婴玩具", "baby", (
        ("尿裤湿巾", (("纸尿裤", "纸尿裤 尿不湿 拉拉裤", "bag", "diaper"),)),
        ("喂养用品", (("奶瓶", "奶瓶 宽口径奶瓶 婴儿奶瓶", "bottle", "ml_baby"),)),
        ("玩具", (("积木", "积木 拼装积木 益智积木", "box", "pcs"), ("毛绒玩具", "毛绒玩具 公仔 玩偶", "pillow", "cm"))),
    )),
    ("运动户外", "sports", (
        ("运动服", (("运动T恤", "运动T恤 速干衣 运动上衣", "shirt", ""), ("运动裤", "运动裤 跑步裤 健身裤", "pants", ""))),
        ("健身器材", (("哑铃", "哑铃 健身哑铃 可调哑铃", "dumbbell", "kg_gym"), ("瑜伽垫", "瑜伽垫 健身垫 防滑垫", "box", "mm"))),
        ("户外装备", (("帐篷", "帐篷 露营帐篷 户外帐篷", "tent", "people"), ("登山包", "登山包 户外背包 徒步包", "bag", "litre_bag"))),
    )),
    ("宠物用品", "pet", (
        ("宠物食品", (("猫粮", "猫粮 成猫粮 幼猫粮", "bag", "kg"), ("狗粮", "狗粮 犬粮 成犬粮", "bag", "kg"))),
        ("宠物日用", (("猫砂", "猫砂 豆腐猫砂 膨润土猫砂", "bag", "kg"), ("猫抓板", "猫抓板 猫爬架 猫窝", "box", ""))),
    )),
    ("汽车用品", "auto", (
        ("车载电器", (("行车记录仪", "行车记录仪 记录仪 高清记录仪", "phone", ""), ("车载充电器", "车载充电器 车充 点烟器", "cylinder", "watt_small"))),
        ("汽车装饰", (("汽车坐垫", "汽车坐垫 座垫 座套", "pillow", ""), ("车载香水", "车载香水 汽车香薰 香薰", "bottle", ""))),
    )),
)

# Per industry kind: title attribute words, pvs keys (value pools), sku sale attribute, model style.
_KINDS = {
    "apparel": dict(attrs="韩版 宽松 修身 显瘦 百搭 纯棉 加厚 薄款 高腰 复古 ins风 法式 气质 休闲 学生 中长款 短款 大码 男女同款 潮牌 小个子",
                    pvs={"材质": "棉 纯棉 聚酯纤维 涤纶 羊毛 亚麻 雪纺 牛仔布", "适用季节": "春季 夏季 秋季 冬季 春秋 四季",
                         "风格": "通勤 韩版 街头 复古 简约 甜美 休闲", "上市年份季节": "2023年春季 2023年夏季 2022年秋季 2022年冬季"},
                    sku=("尺码", "S M L XL XXL 3XL"), latin=False),
    "digital": dict(attrs="全网通 5G 旗舰 智能 超薄 快充 长续航 高清 无线 蓝牙 降噪 游戏 学生 商务 大屏 拍照 轻薄 防摔",
                    pvs={"运行内存": "4GB 6GB 8GB 12GB 16GB", "网络类型": "5G全网通 4G全网通 无", "上市时间": "2021年 2022年 2023年",
                         "屏幕尺寸": "6.1英寸 6.5英寸 6.7英寸 10.9英寸 11英寸"},
                    sku=("套餐类型", "官方标配 套餐一 套餐二 套餐三"), latin=True),
    "beauty": dict(attrs="补水 保湿 控油 美白 提亮 修护 温和 敏感肌 滋润 持久 不脱妆 清爽 学生党 平价 淡香 礼盒装 滋养 去屑",
                   pvs={"功效": "补水 保湿 美白 控油 修护 抗皱 提亮", "适合肤质": "任何肤质 干性 油性 混合性 敏感性",
                        "保质期": "36个月 3年 1095天 24个月"},
                   sku=("规格", ""), latin=False),
    "food": dict(attrs="零食 休闲 原味 香辣 即食 袋装 整箱 罐装 礼盒 无糖 低脂 代餐 营养 早餐 特产 独立小包装 网红 办公室",
                 pvs={"口味": "原味 香辣味 五香味 麻辣味 海盐味 奶香味 混合口味", "保质期": "180天 12个月 365天 9个月",
                      "包装方式": "包装 袋装 罐装 礼盒装 箱装", "储藏方法": "常温 阴凉干燥处 冷藏"},
                 sku=("口味", "原味 香辣味 五香味 奶香味"), latin=False),
    "home": dict(attrs="北欧 简约 现代 家用 加厚 实木 客厅 卧室 收纳 防水 耐用 大容量 ins风 免打孔 轻奢 全棉 护眼",
                 pvs={"材质": "棉 涤纶 塑料 实木 金属 PP 全棉", "风格": "北欧 简约 现代 中式 日式 轻奢",
                      "适用空间": "客厅 卧室 书房 全屋 阳台"},
                 sku=("套餐类型", "单品 两件套 三件套"), latin=False),
    "appliance": dict(attrs="家用 小型 智能 静音 节能 大功率 迷你 便携 多功能 变频 一级能效 宿舍 办公室 不锈钢 负离子 预约",
                      pvs={"电压": "220V", "能效等级": "一级能效 二级能效 三级能效", "控制方式": "机械式 触摸式 智能APP 遥控",
                           "上市时间": "2021年 2022年 2023年"},
                      sku=("套餐类型", "官方标配 升级款 豪华款"), latin=True),
    "baby": dict(attrs="婴儿 宝宝 儿童 新生儿 加厚 柔软 益智 早教 安全 无味 男孩 女孩 超薄 透气 防胀气",
                 pvs={"适用年龄": "0-6个月 6-12个月 1-3岁 3-6岁 6岁以上", "材质": "PP PPSU 硅胶 纯棉 ABS塑料 玻璃"},
                 sku=("颜色分类", ""), latin=False),
    "sports": dict(attrs="运动 户外 健身 跑步 透气 防滑 速干 专业 轻便 耐磨 减震 瑜伽 露营 防水 便携 加厚",
                   pvs={"材质": "聚酯纤维 锦纶 氨纶 铸铁 TPE NBR 牛津布", "适用场景": "跑步 健身 露营 登山 瑜伽 综合训练"},
                   sku=("尺码", "S M L XL XXL"), latin=False),
    "pet": dict(attrs="天然 无谷 营养 增肥 发腮 美毛 除臭 低尘 结团 耐抓 成猫 幼猫 全价 通用型 大包装",
                pvs={"适用对象": "成猫 幼猫 全阶段 成犬 幼犬", "口味": "鸡肉味 三文鱼味 牛肉味 金枪鱼味", "保质期": "12个月 18个月"},
                sku=("口味", "鸡肉味 三文鱼味 牛肉味"), latin=False),
    "auto": dict(attrs="通用 车载 汽车 高清 夜视 快充 四季 透气 除异味 持久 免安装 无线 原厂 专车专用",
                 pvs={"适用车型": "通用 轿车 SUV 专车专用", "材质": "皮革 亚麻 冰丝 ABS 铝合金"},
                 sku=("套餐类型", "标准版 升级版 豪华版"), latin=True),
}

_SPECS = {  # spec kind -> (pvs key, values from small to large)
    "storage": ("存储容量", "64GB 128GB 256GB 512GB 1TB"), "battery": ("电池容量", "5000mAh 10000mAh 20000mAh 30000mAh"),
    "ml": ("净含量", "30ml 50ml 75ml 100ml 150ml"), "ml_big": ("净含量", "200ml 400ml 500ml 750ml 1000ml"),
    "ml_baby": ("容量", "150ml 180ml 240ml 300ml"), "g": ("净含量", "30g 50g 80g 100g"),
    "g_food": ("净含量", "250g 500g 750g 1kg 1.5kg"), "kg": ("净含量", "1.5kg 2.5kg 5kg 10kg 20kg"),
    "kg_gym": ("重量", "5kg 10kg 15kg 20kg 30kg"), "pian": ("规格", "5片 10片 20片 30片"), "ping": ("规格", "12瓶 15瓶 24瓶"),
    "tiao": ("规格", "20条 30条 40条 100条"), "ge": ("规格", "10个 20个 30个 50个"),
    "pcs": ("颗粒数", "300颗粒 500颗粒 800颗粒 1200颗粒"), "cm": ("尺寸", "30cm 45cm 60cm 80cm"), "mm": ("厚度", "6mm 8mm 10mm 15mm"),
    "people": ("适用人数", "2人 3-4人 5-8人"), "litre_box": ("容量", "30L 50L 80L 120L"), "litre_bag": ("容量", "30L 40L 50L 60L"),
    "litre_kitchen": ("容量", "1.5L 1.7L 2L 3L 4L 5L"), "watt": ("功率", "800W 1200W 1600W 2000W 2200W"),
    "watt_small": ("功率", "18W 24W 36W 48W 65W"), "inch_tv": ("屏幕尺寸", "43英寸 50英寸 55英寸 65英寸 75英寸"),
    "inch_bag": ("尺寸", "20英寸 22英寸 24英寸 26英寸 28英寸"), "bed": ("适用床尺寸", "1.2m 1.5m 1.8m 2.0m"),
    "metre": ("线长", "1m 1.5m 2m 3m"), "diaper": ("尺码", "NB码 S码 M码 L码 XL码 XXL码"),
}
_UNIT_VARIANTS = {  # unit -> spellings sellers use for it (first is canonical)
    "GB": ("GB", "G", "g", "gb"), "TB": ("TB", "T"), "mAh": ("mAh", "mah", "毫安"), "ml": ("ml", "mL", "ML", "毫升"),
    "g": ("g", "克", "G"), "kg": ("kg", "KG", "公斤"), "L": ("L", "l", "升"), "W": ("W", "w", "瓦"),
    "英寸": ("英寸", "寸", "吋"), "m": ("m", "米"), "cm": ("cm", "厘米", "CM"), "mm": ("mm", "毫米"),
}
_COLOURS = {
    "黑色": (25, 25, 28), "白色": (240, 240, 236), "灰色": (128, 128, 130), "红色": (200, 30, 40), "酒红色": (120, 20, 40),
    "粉色": (240, 160, 180), "蓝色": (40, 90, 200), "藏青色": (30, 40, 80), "天蓝色": (120, 180, 235), "绿色": (50, 150, 70),
    "墨绿色": (30, 70, 50), "黄色": (240, 200, 40), "橙色": (240, 130, 30), "紫色": (120, 60, 160), "卡其色": (190, 170, 120),
    "米白色": (235, 225, 205), "杏色": (230, 200, 160), "咖啡色": (110, 75, 50), "银色": (190, 192, 196),
    "金色": (210, 175, 80), "深空灰": (70, 72, 78), "星光色": (235, 225, 210), "透明": (220, 235, 240),
}
_COLOUR_SYNONYMS = {"黑色": "曜石黑", "白色": "珍珠白", "灰色": "浅灰", "蓝色": "宝石蓝", "红色": "中国红", "粉色": "樱花粉",
                    "绿色": "薄荷绿", "金色": "香槟金", "银色": "月光银", "紫色": "梦幻紫"}
_SYLLABLES = ("美mei 佳jia 优you 诺nuo 雅ya 森sen 凯kai 蓝lan 星xing 酷ku 欧ou 丽li 宜yi 禾he 乐le 维wei 康kang 悦yue "
              "初chu 简jian 木mu 云yun 米mi 唯wei 卡ka 芙fu 兰lan 思si 安an 格ge 品pin 源yuan 青qing 锐rui 创chuang "
              "迪di 珀po 朗lang 菲fei 尚shang 派pai 瑞rui 泰tai 宝bao 莱lai 德de 贝bei 威wei 奥ao 达da 露lu 薇wei "
              "纳na 帕pa 柏bai 琪qi 熊xiong 驰chi 途tu 野ye 峰feng 极ji 小xiao 大da 花hua 竹zhu").split()
_LINE_PREFIXES = ("经典 星光 云朵 小白 小棕 雪域 极光 森林 海洋 轻奢 臻选 元气 初心 暖阳 清风 樱花 蜜桃 燕麦 黑金 "
                  "冰川 晨曦 月光 流光 悦享 青春 自然 匠心 星河 朝露").split()
_LINE_SUFFIXES = ("系列", "款", "版", "", "升级款")
_MODEL_SUFFIXES = ("", "", "", " Pro", " Max", " Plus", " Lite", " SE", " Ultra", " mini", " Air", "s")
_SERIES_LETTERS = ("A", "C", "E", "F", "G", "H", "K", "M", "N", "P", "R", "S", "T", "V", "X", "Y", "Z", "GT", "KX", "Note")
_PROMO = ("包邮", "正品", "官方正品", "现货速发", "限时特惠", "热卖", "爆款", "新品", "特价", "顺丰包邮", "正品保证",
          "假一赔十", "直播专享", "品牌授权", "买一送一", "当天发货", "网红同款", "明星同款", "官方授权", "清仓", "旗舰店")
_YEAR_WORDS = ("2023新款", "2022新款", "2023年新款", "新款", "2023春夏新款", "2022秋冬新款")
_ORIGINS = ("中国大陆", "广东省", "浙江省", "江苏省", "福建省", "上海", "日本", "韩国", "美国", "法国", "泰国")
_SHOE_SIZES = "35 36 37 38 39 40 41 42 43 44"
_WEAR_SHAPES = ("shirt", "dress", "pants", "shoe")
_BANNERS = ("SALE", "HOT", "NEW", "-30%", "2023", "TOP", "5.0")


# ----------------------------------------------------------------------------------------------
# Small deterministic random helpers (numpy Generator only; never Python's hash or set order).
# ----------------------------------------------------------------------------------------------
def _pick(rng: np.random.Generator, seq):
    return seq[int(rng.integers(len(seq)))]


def _sample(rng: np.random.Generator, seq, k: int) -> list:
    k = max(0, min(k, len(seq)))
    return [seq[int(i)] for i in rng.choice(len(seq), size=k, replace=False)]


def _coin(rng: np.random.Generator, p: float) -> bool:
    return bool(rng.random() < p)


def _words(s: str) -> tuple[str, ...]:
    return tuple(s.split())


# ----------------------------------------------------------------------------------------------
# The world: categories, brands, models, products (model x spec variant), sellers.
# ----------------------------------------------------------------------------------------------
@dataclass
class _Leaf:
    index: int
    industry: str
    kind: str
    names: tuple[str, str, str]
    ids: tuple[str, str, str]
    nouns: tuple[str, ...]
    shape: str
    spec: str


@dataclass
class _Brand:
    cn: str
    en: str
    hue: float
    palette: tuple[str, ...]
    origin: str
    aspect: tuple[float, float]
    series: tuple[str, ...]


@dataclass
class _Product:
    index: int
    leaf: _Leaf
    brand: _Brand
    group: int  # (leaf, brand) id
    model: int  # (leaf, brand, model) id
    model_name: str  # Latin model number ("X20 Pro") or Chinese line ("云朵系列")
    code: str  # 货号
    spec: str  # "" when the leaf has no spec variants
    colours: tuple[str, ...]
    words: tuple[str, ...]  # core title attribute words
    noun: str  # preferred product noun
    pvs: dict  # model-level pvs values (key -> value)
    design: dict  # image parameters
    look: int = 0  # 0: the model's first look; 1: its look variant (texts identical, image not)
    image_colour: str | None = None  # the drawing's main colour when it differs from colours[0]
    unseen: bool = False
    split: str = "train"


@dataclass
class _Seller:
    sep: str
    brand_style: int
    promo_rate: float
    bracket: bool
    shuffle_rate: float
    flagship: bool = False
    generic: bool = False  # title: noun + generic words; no pvs


def _build_leaves(rng: np.random.Generator) -> list[_Leaf]:
    """Every leaf of the taxonomy with random but seed-fixed Taobao-like category ids."""
    n_level2 = sum(len(level2) for _, _, level2 in _TAXONOMY)
    n_leaves = sum(len(leaves) for _, _, level2 in _TAXONOMY for _, leaves in level2)
    ids1 = rng.choice(np.arange(10, 100), size=len(_TAXONOMY), replace=False)
    ids2 = rng.choice(np.arange(1000, 10000), size=n_level2, replace=False)
    ids3 = rng.choice(np.arange(50000000, 50999999), size=n_leaves, replace=False)
    leaves, j2 = [], 0
    for i1, (industry, kind, level2) in enumerate(_TAXONOMY):
        for name2, leaf_defs in level2:
            for name3, nouns, shape, spec in leaf_defs:
                ids = (str(ids1[i1]), str(ids2[j2]), str(ids3[len(leaves)]))
                leaves.append(_Leaf(len(leaves), industry, kind, (industry, name2, name3), ids, _words(nouns), shape, spec))
            j2 += 1
    return leaves


def _make_brands(rng: np.random.Generator, n: int, taken: dict) -> list[_Brand]:
    """`n` new brands with unique Chinese names, a pinyin/Latin name, colour palette and look."""
    brands = []
    colour_names = list(_COLOURS)
    while len(brands) < n:
        parts = _sample(rng, _SYLLABLES, 3 if _coin(rng, 0.2) else 2)
        cn = "".join(p[0] for p in parts)
        if cn in taken:
            continue
        taken[cn] = True
        en = "".join(p[1:] for p in parts)
        en = en.upper() if _coin(rng, 0.6) else en.capitalize()
        series = tuple(_sample(rng, _SERIES_LETTERS, int(rng.integers(1, 3))))
        brands.append(_Brand(cn, en, float(rng.random()), tuple(_sample(rng, colour_names, 5)),
                             _pick(rng, _ORIGINS), (float(rng.uniform(0.45, 0.8)), float(rng.uniform(0.55, 0.9))), series))
    return brands


def _model_names(rng: np.random.Generator, brand: _Brand, kind: str, n: int, taken: dict) -> list[str]:
    """`n` distinct model names for a brand; siblings share series letters and numbers."""
    names = []
    for _ in range(200):
        if len(names) == n:
            break
        if _KINDS[kind]["latin"]:
            step = _pick(rng, (1, 10, 100))
            name = f"{_pick(rng, brand.series)}{int(rng.integers(1, 10)) * step}{_pick(rng, _MODEL_SUFFIXES)}"
        else:
            name = _pick(rng, _LINE_PREFIXES) + _pick(rng, _LINE_SUFFIXES)
        if (brand.cn, name) not in taken:
            taken[(brand.cn, name)] = True
            names.append(name)
    return names


def _model_code(rng: np.random.Generator) -> str:
    letters = "".join(_sample(rng, "ABCDEFGHJKLMNPQRSTWXYZ", int(rng.integers(1, 3))))
    digits = "".join(str(int(d)) for d in rng.integers(0, 10, size=int(rng.integers(3, 6))))
    return _pick(rng, (f"{letters}{digits}", f"{letters}-{digits}", f"{letters}{digits[:2]}-{digits[2:]}"))


def _build_products(rng: np.random.Generator, leaf: _Leaf, budget: int, brand_pool: list[_Brand],
                    counters: dict, taken: dict, look_rate: float) -> list[_Product]:
    """Brands x models x spec variants (x looks) for one leaf, about budget/3 products, at most `budget`."""
    kind = _KINDS[leaf.kind]
    target = max(2, round(budget / 3.0))
    spec_values = _words(_SPECS[leaf.spec][1]) if leaf.spec else ("",)
    brands = _sample(rng, brand_pool, len(brand_pool))
    products: list[_Product] = []
    for bi, brand in enumerate(brands):
        if len(products) >= target and bi >= 2:
            break
        group = counters["group"]
        counters["group"] += 1
        style_words = _sample(rng, _words(kind["attrs"]), 2)
        for model_name in _model_names(rng, brand, leaf.kind, int(rng.integers(2, 5)), taken):
            model = counters["model"]
            counters["model"] += 1
            n_var = int(rng.choice([1, 2, 3], p=[0.4, 0.4, 0.2])) if leaf.spec else 1
            start = int(rng.integers(0, len(spec_values) - n_var + 1))
            colours = tuple(_sample(rng, brand.palette, int(rng.integers(2, 5))))
            pvs = {key: _pick(rng, _words(values)) for key, values in kind["pvs"].items()}
            words = tuple(style_words + _sample(rng, _words(kind["attrs"]), 2))
            noun = _pick(rng, leaf.nouns)
            design = _model_design(rng, brand, model_name)
            code = _model_code(rng)
            looks = [(design, None)]
            if _coin(rng, look_rate):
                looks.append(_look_variant(rng, design, colours))
            for spec in spec_values[start:start + n_var]:
                for look, (drawn, image_colour) in enumerate(looks):
                    products.append(_Product(len(products), leaf, brand, group, model, model_name, code, spec,
                                             colours, words, noun, pvs, drawn, look, image_colour))
    # looks multiply the products: cap them so a product still has ~2.5 listings on average
    return products[:max(1, round(budget / 2.5))]


def _model_design(rng: np.random.Generator, brand: _Brand, model_name: str) -> dict:
    """Image look of a model: the brand's hue and aspect with a small per-model twist."""
    hue = (brand.hue + rng.normal(0, 0.04)) % 1.0
    return dict(hue=float(hue), sat=float(rng.uniform(0.35, 0.85)), val=float(rng.uniform(0.45, 0.9)),
                aspect=(brand.aspect[0] * float(rng.uniform(0.92, 1.08)), brand.aspect[1] * float(rng.uniform(0.92, 1.08))),
                pattern=_pick(rng, ("none", "none", "stripes", "dots", "band")))


def _look_variant(rng: np.random.Generator, design: dict, colours: tuple[str, ...]) -> tuple[dict, str]:
    """(design, main colour) of a model's second look: another pattern, an accent hue far from the
    first, and a main colour the texts never name (they describe the first look's colours)."""
    pattern = _pick(rng, tuple(p for p in ("none", "stripes", "dots", "band") if p != design["pattern"]))
    hue = (design["hue"] + float(rng.uniform(0.3, 0.7))) % 1.0
    colour = _pick(rng, tuple(c for c in _COLOURS if c not in colours))
    return {**design, "pattern": pattern, "hue": hue}, colour


def _make_sellers(rng: np.random.Generator, n: int, generic_rate: float) -> list[_Seller]:
    return [_Seller(sep=" " if _coin(rng, 0.45) else "", brand_style=int(rng.integers(0, 5)),
                    promo_rate=float(rng.uniform(0.0, 0.9)), bracket=_coin(rng, 0.3),
                    shuffle_rate=float(rng.uniform(0.0, 0.6)), generic=_coin(rng, generic_rate)) for _ in range(n)]


# ----------------------------------------------------------------------------------------------
# Listings: title, pvs, sku for one seller's item of a product.
# ----------------------------------------------------------------------------------------------
def _spec_text(rng: np.random.Generator, value: str, p_variant: float = 0.35) -> str:
    """A seller's spelling of a spec value: 256GB -> 256G, 5kg -> 5公斤 / 10斤, 55英寸 -> 55寸."""
    m = re.fullmatch(r"([\d.\-]+)(.*)", value)
    if not m or not _coin(rng, p_variant):
        return value
    number, unit = m.groups()
    if unit == "kg" and _coin(rng, 0.3):
        jin = float(number) * 2
        return f"{jin:g}斤"
    return number + _pick(rng, _UNIT_VARIANTS.get(unit, (unit,)))


def _brand_text(rng: np.random.Generator, brand: _Brand, style: int) -> str:
    style = style if _coin(rng, 0.7) else int(rng.integers(0, 5))
    return (brand.cn, brand.en, f"{brand.cn}/{brand.en}", f"{brand.cn}（{brand.en}）", f"{brand.en}/{brand.cn}")[style]


def _model_text(rng: np.random.Generator, name: str) -> str:
    if not _coin(rng, 0.4):
        return name
    return _pick(rng, (name.replace(" ", ""), name.lower(), name.upper(), re.sub(r"^([A-Za-z]+)(\d)", r"\1-\2", name)))


def _colour_text(rng: np.random.Generator, colour: str) -> str:
    return _COLOUR_SYNONYMS.get(colour, colour) if _coin(rng, 0.25) else colour


def _generic_title(rng: np.random.Generator, p: _Product, seller: _Seller) -> str:
    """A generic seller's title: the kind's attribute words, a noun and promos; nothing that names
    the brand, model, spec or colour, so only the image ties the listing to its product."""
    kind = _KINDS[p.leaf.kind]
    tokens = _sample(rng, _words(kind["attrs"]), int(rng.integers(1, 3))) + [_pick(rng, p.leaf.nouns)]
    tokens += _sample(rng, _PROMO, int(rng.integers(1, 3)))
    return seller.sep.join(tokens)[:60]


def _make_title(rng: np.random.Generator, p: _Product, seller: _Seller) -> str:
    """Taobao-style title: promo, brand, model, year, attribute words, noun, spec; seller noise."""
    if seller.generic:
        return _generic_title(rng, p, seller)
    kind = _KINDS[p.leaf.kind]
    core = [w for w in p.words if _coin(rng, 0.75)] + _sample(rng, _words(kind["attrs"]), int(rng.integers(0, 3)))
    if _coin(rng, 0.3):
        core.append(_pick(rng, _YEAR_WORDS))
    if _has_colour(p) and _coin(rng, 0.25):
        core.append(_colour_text(rng, _pick(rng, p.colours)))
    core = list(dict.fromkeys(core))  # a word at most once (dict keeps order, unlike a set)
    core = _sample(rng, core, len(core)) if _coin(rng, seller.shuffle_rate) else core
    head = [_brand_text(rng, p.brand, seller.brand_style)] if _coin(rng, 0.9) else []
    if _coin(rng, 0.85 if kind["latin"] else 0.5):
        head.append(_model_text(rng, p.model_name))
    if not kind["latin"] and _coin(rng, 0.2):
        head.append(p.code)
    tail = [p.noun if _coin(rng, 0.6) else _pick(rng, p.leaf.nouns)]
    if p.spec and _coin(rng, 0.85):
        tail.append(_spec_text(rng, p.spec))
    tokens = head + core + tail if _coin(rng, 0.8) else core + head + tail
    if seller.flagship and _coin(rng, 0.5):
        tokens.append("官方旗舰店")
    promos = _sample(rng, _PROMO, int(rng.integers(1, 4))) if _coin(rng, seller.promo_rate) else []
    if promos and seller.bracket:
        tokens.insert(0, f"【{promos.pop()}】")
    tokens += promos
    return seller.sep.join(t for t in tokens if t)[:60]


def _make_item_pvs(rng: np.random.Generator, p: _Product, item_colours: list[str]) -> str:
    """Item properties ``k#:#v#;#...``: shared product facts, per-seller subsets, repeated colour keys."""
    kind = _KINDS[p.leaf.kind]
    entries = []
    if _coin(rng, 0.9):
        entries.append(("品牌", _pick(rng, (p.brand.cn, f"{p.brand.cn}/{p.brand.en}", p.brand.en))))
    if _coin(rng, 0.75 if kind["latin"] else 0.45):
        entries.append(("型号" if kind["latin"] else "系列", _model_text(rng, p.model_name)))
    if _coin(rng, 0.5):
        entries.append(("货号", p.code if _coin(rng, 0.8) else _model_code(rng)))
    if p.spec and _coin(rng, 0.85):
        entries.append((_SPECS[p.leaf.spec][0], _spec_text(rng, p.spec, 0.2)))
    for key, value in p.pvs.items():
        if _coin(rng, 0.6):
            entries.append((key, value if _coin(rng, 0.85) else _pick(rng, _words(kind["pvs"][key]))))
    if _coin(rng, 0.5):
        entries.append(("产地", p.brand.origin if _coin(rng, 0.85) else _pick(rng, _ORIGINS)))
    if _has_colour(p) and _coin(rng, 0.7):
        entries += [("颜色分类", _colour_text(rng, c)) for c in item_colours]
    if _coin(rng, 0.25):
        entries = _sample(rng, entries, len(entries))
    return "#;#".join(f"{k}#:#{v}" for k, v in entries)


def _make_sku_pvs(rng: np.random.Generator, p: _Product, item_colours: list[str]) -> str:
    """Sale attributes: one entry per colour plus the kind's SKU axis (尺码, 套餐类型, 口味, 规格)."""
    key, values = _KINDS[p.leaf.kind]["sku"]
    entries = [("颜色分类", c) for c in item_colours] if _has_colour(p) else []
    if p.leaf.shape == "shoe":
        values = _SHOE_SIZES
    elif key == "尺码" and p.leaf.shape not in _WEAR_SHAPES:
        values = ""
    if key == "规格":
        entries.append((key, p.spec or _pick(rng, ("标准装", "旅行装", "套装"))))
    elif values:
        opts = _words(values)
        start = int(rng.integers(0, max(1, len(opts) - 2)))
        entries += [(key, v) for v in opts[start:start + int(rng.integers(1, len(opts) - start + 1))]]
    return "#;#".join(f"{k}#:#{v}" for k, v in entries)


def _has_colour(p: _Product) -> bool:
    """Food and pet food are sold by flavour and weight, not colour."""
    return p.leaf.kind not in ("food", "pet") or p.leaf.shape == "box"


def _maybe_missing(rng: np.random.Generator, record: dict, keys, p: float) -> None:
    """With probability `p` blank `keys` out: removed, null or "" (all three occur in real data)."""
    if not _coin(rng, p):
        return
    how = int(rng.integers(0, 3))
    for key in keys:
        if how == 0:
            record.pop(key, None)
        else:
            record[key] = None if how == 1 else ""


def _make_record(rng: np.random.Generator, p: _Product, seller: _Seller) -> dict:
    """One item_info JSON object (keys in INFO_KEYS order) for a seller's listing of product `p`."""
    item_id = rng.bytes(16).hex()
    colours = _sample(rng, p.colours, int(rng.integers(1, len(p.colours) + 1)))
    leaf = p.leaf
    record = {
        "item_id": item_id, "industry_name": leaf.industry, "cate_id": leaf.ids[2], "cate_name": leaf.names[2],
        "cate_id_path": ",".join(leaf.ids), "cate_name_path": ",".join(leaf.names), "item_image_name": f"{item_id}.jpg",
        "title": _make_title(rng, p, seller),
        "item_pvs": "" if seller.generic else _make_item_pvs(rng, p, colours),
        "sku_pvs": "" if seller.generic else _make_sku_pvs(rng, p, colours),
    }
    _maybe_missing(rng, record, ("item_pvs",), 0.08)
    _maybe_missing(rng, record, ("sku_pvs",), 0.15)
    _maybe_missing(rng, record, ("item_image_name",), 0.03)
    _maybe_missing(rng, record, ("cate_id", "cate_name", "cate_id_path", "cate_name_path"), 0.02)
    _maybe_missing(rng, record, ("cate_name_path",), 0.01)
    _maybe_missing(rng, record, ("industry_name",), 0.01)
    _maybe_missing(rng, record, ("title",), 0.01)
    return record


# ----------------------------------------------------------------------------------------------
# World -> items (with hidden truth columns) -> pairs.
# ----------------------------------------------------------------------------------------------
def _leaf_budgets(rng: np.random.Generator, n: int, k: int, minimum: int = 4) -> np.ndarray:
    weights = rng.dirichlet(np.full(k, 4.0))
    return minimum + rng.multinomial(max(0, n - minimum * k), weights)


def _assign_valid_groups(rng: np.random.Generator, products: list[_Product], counts: np.ndarray, target: int) -> None:
    """Move whole (leaf, brand) groups of seen leaves to valid until `target` items; leaves keep a train group."""
    groups: dict[int, list[_Product]] = {}
    for p in products:
        if not p.unseen:
            groups.setdefault(p.group, []).append(p)
    train_groups_per_leaf: dict[int, int] = {}
    for members in groups.values():
        train_groups_per_leaf[members[0].leaf.index] = train_groups_per_leaf.get(members[0].leaf.index, 0) + 1
    moved = 0
    order = list(groups)
    for gi in rng.permutation(len(order)):
        members = groups[order[int(gi)]]
        leaf = members[0].leaf.index
        if moved >= target or train_groups_per_leaf[leaf] <= 1:
            continue
        for p in members:
            p.split = "valid"
        train_groups_per_leaf[leaf] -= 1
        moved += int(sum(counts[p.index] for p in members))


def build_ccks_tables(seed: int, preset: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Build the synthetic world: (items, pairs) with public fields plus hidden truth columns.

    items: ``record`` (the JSON object), ``split``, ``product``, ``model``, ``group``, ``leaf``,
    ``brand``, ``spec``, ``unseen``, ``design`` (image parameters), ``look`` and ``generic`` (a
    generic seller's listing). pairs: ``src_item_id``, ``tgt_item_id``, ``item_label`` (int),
    ``kind`` (positive/hard_look/hard_spec/hard_model/same_cate/easy),
    ``split`` and ``unseen`` (pair touches a leaf category absent from train). Tests use the
    hidden columns to check what the generator promises.
    """
    cfg = PRESET_CONFIG[preset]
    rng = np.random.default_rng(seed)
    all_leaves = _build_leaves(rng)
    n_leaves = cfg.n_leaves or len(all_leaves)
    leaves = [all_leaves[int(i)] for i in np.sort(rng.choice(len(all_leaves), size=n_leaves, replace=False))]
    n_unseen = max(2, round(0.1 * n_leaves))
    unseen_leaves = {leaves[int(i)].index for i in rng.choice(n_leaves, size=n_unseen, replace=False)}
    n_unseen_items = round(cfg.unseen_item_share * cfg.n_items)
    seen_budget = _leaf_budgets(rng, cfg.n_items - n_unseen_items, n_leaves - n_unseen)
    unseen_budget = _leaf_budgets(rng, n_unseen_items, n_unseen)

    taken: dict = {}
    brand_pools = {industry: _make_brands(rng, 12 if cfg.n_leaves else 24, taken) for industry, _, _ in _TAXONOMY}
    counters = {"group": 0, "model": 0}
    products: list[_Product] = []
    counts: list[int] = []
    budgets = iter(seen_budget), iter(unseen_budget)
    for leaf in leaves:
        unseen = leaf.index in unseen_leaves
        budget = int(next(budgets[unseen]))
        leaf_products = _build_products(rng, leaf, budget, brand_pools[leaf.industry], counters, taken,
                                        cfg.look_rate)
        extra = rng.multinomial(budget - len(leaf_products), rng.dirichlet(np.full(len(leaf_products), 0.8)))
        for p, e in zip(leaf_products, extra):
            p.index, p.unseen, p.split = len(products), unseen, "valid" if unseen else "train"
            products.append(p)
            counts.append(1 + int(e))
    counts = np.array(counts)
    valid_target = round(cfg.valid_item_share * cfg.n_items) - n_unseen_items
    _assign_valid_groups(rng, products, counts, valid_target)

    sellers = _make_sellers(rng, max(20, cfg.n_items // 5), cfg.generic_seller_rate)
    rows = []
    for p in products:
        flagship = _Seller(sep=" ", brand_style=2, promo_rate=0.3, bracket=False, shuffle_rate=0.1, flagship=True)
        chosen = [sellers[int(i)] for i in rng.choice(len(sellers), size=int(counts[p.index]), replace=False)]
        if _coin(rng, 0.25):
            chosen[0] = flagship
        for seller in chosen:
            rows.append(dict(record=_make_record(rng, p, seller), split=p.split, product=p.index, model=p.model,
                             group=p.group, leaf=p.leaf.index, brand=p.brand.cn, spec=p.spec, unseen=p.unseen,
                             design=p.design, shape=p.leaf.shape, brand_en=p.brand.en, model_name=p.model_name,
                             colours=p.colours, look=p.look, image_colour=p.image_colour, generic=seller.generic))
    items = pd.DataFrame(rows)
    items.insert(0, "item_id", [r["item_id"] for r in items["record"]])
    items = items.iloc[rng.permutation(len(items))].reset_index(drop=True)
    pairs = pd.concat([
        _sample_pairs(rng, items[items["split"] == "train"], cfg.train_pairs, cfg, "train"),
        _sample_valid_pairs(rng, items[items["split"] == "valid"], cfg),
    ], ignore_index=True)
    return items, pairs


class _PairPool:
    """Index of one split's items by product/model/group/leaf to draw pairs of each kind."""

    def __init__(self, items: pd.DataFrame):
        self.items = items.reset_index(drop=True)
        self.by = {col: self._index(col) for col in ("product", "model", "group", "leaf")}
        self.leaf_of = self.items["leaf"].to_numpy()

    def _index(self, col: str) -> dict[int, np.ndarray]:
        return {int(k): np.asarray(v) for k, v in self.items.groupby(col, sort=True).indices.items()}

    def partners(self, kind: str, a: int) -> np.ndarray:
        """Rows that make a pair of `kind` with row `a` (label follows from the kind)."""
        row = self.items.iloc[a]
        if kind == "positive":
            cand = self.by["product"][int(row["product"])]
        elif kind in ("hard_look", "hard_spec"):  # same model: same spec, other look / other spec, same look
            cand = self.by["model"][int(row["model"])]
            same_spec = self.items["spec"].to_numpy()[cand] == row["spec"]
            same_look = self.items["look"].to_numpy()[cand] == row["look"]
            cand = cand[(same_spec & ~same_look) if kind == "hard_look" else (~same_spec & same_look)]
        elif kind == "hard_model":
            cand = self.by["group"][int(row["group"])]
            cand = cand[self.items["model"].to_numpy()[cand] != row["model"]]
        elif kind == "same_cate":
            cand = self.by["leaf"][int(row["leaf"])]
            cand = cand[self.items["group"].to_numpy()[cand] != row["group"]]
        else:
            cand = np.flatnonzero(self.leaf_of != row["leaf"])
        return cand[cand != a]


def _sample_kind(rng, pool: _PairPool, kind: str, n: int, anchors: np.ndarray, easy_partners: np.ndarray | None,
                 taken: dict) -> list[tuple[int, int, str]]:
    """Up to `n` new (a, b, kind) pairs with `a` drawn from `anchors`; `taken` dedupes across kinds."""
    out = []
    for _ in range(40 * n):
        if len(out) >= n or not len(anchors):
            break
        a = int(anchors[int(rng.integers(len(anchors)))])
        cand = pool.partners(kind, a)
        if kind == "easy" and easy_partners is not None:
            cand = cand[np.isin(cand, easy_partners)]
        if not len(cand):
            continue
        b = int(cand[int(rng.integers(len(cand)))])
        ida, idb = pool.items.at[a, "item_id"], pool.items.at[b, "item_id"]
        key = (ida, idb) if ida < idb else (idb, ida)
        if key in taken:
            continue
        taken[key] = True
        out.append((a, b, kind) if _coin(rng, 0.5) else (b, a, kind))
    return out


def _sample_pairs(rng, items: pd.DataFrame, n: int, cfg: _Preset, split: str, anchor_mask=None,
                  easy_mask=None, taken: dict | None = None) -> pd.DataFrame:
    """`n` pairs of `items`: positive_rate positives, the rest split by negative_mix (shortfalls roll on)."""
    pool = _PairPool(items)
    taken = {} if taken is None else taken
    anchors = np.arange(len(pool.items)) if anchor_mask is None else np.flatnonzero(anchor_mask)
    easy_partners = None if easy_mask is None else np.flatnonzero(easy_mask)
    n_pos = round(cfg.positive_rate * n)
    quotas = [n_pos] + list(np.round(np.array(cfg.negative_mix) * (n - n_pos)).astype(int))
    quotas[-1] = n - sum(quotas[:-1])
    drawn, carry = [], 0
    for kind, quota in zip(("positive",) + NEGATIVE_KINDS, quotas):
        got = _sample_kind(rng, pool, kind, int(quota) + carry, anchors, easy_partners, taken)
        carry = int(quota) + carry - len(got)
        drawn += got
    a = np.array([d[0] for d in drawn], dtype=int)
    b = np.array([d[1] for d in drawn], dtype=int)
    kinds = np.array([d[2] for d in drawn], dtype=object)
    ids = pool.items["item_id"].to_numpy()
    unseen = pool.items["unseen"].to_numpy()
    return pd.DataFrame({"src_item_id": ids[a], "tgt_item_id": ids[b], "item_label": (kinds == "positive").astype(int),
                         "kind": kinds, "split": split, "unseen": unseen[a] | unseen[b]})


def _sample_valid_pairs(rng, items: pd.DataFrame, cfg: _Preset) -> pd.DataFrame:
    """Valid pairs: unseen_pair_share anchored in train-absent leaves, the rest among seen-leaf items."""
    items = items.reset_index(drop=True)
    unseen = items["unseen"].to_numpy()
    n_unseen = round(cfg.unseen_pair_share * cfg.valid_pairs)
    taken: dict = {}
    part_unseen = _sample_pairs(rng, items, n_unseen, cfg, "valid", anchor_mask=unseen, taken=taken)
    part_seen = _sample_pairs(rng, items, cfg.valid_pairs - len(part_unseen), cfg, "valid", anchor_mask=~unseen,
                              easy_mask=~unseen, taken=taken)
    both = pd.concat([part_unseen, part_seen], ignore_index=True)
    return both.iloc[rng.permutation(len(both))].reset_index(drop=True)


# ----------------------------------------------------------------------------------------------
# Images: one drawn product per product, perturbed per listing.
# ----------------------------------------------------------------------------------------------
_CANVAS = 256
_FONTS: dict[int, ImageFont.ImageFont] = {}

# Unit polygons (x, y in 0..1 of the product box) for outline shapes.
_POLYGONS = {
    "shirt": ((0.3, 0.05), (0.7, 0.05), (1.0, 0.25), (0.88, 0.42), (0.78, 0.34), (0.78, 1.0), (0.22, 1.0),
              (0.22, 0.34), (0.12, 0.42), (0.0, 0.25)),
    "dress": ((0.36, 0.0), (0.64, 0.0), (0.7, 0.35), (1.0, 1.0), (0.0, 1.0), (0.3, 0.35)),
    "pants": ((0.12, 0.0), (0.88, 0.0), (0.98, 1.0), (0.58, 1.0), (0.5, 0.3), (0.42, 1.0), (0.02, 1.0)),
    "shoe": ((0.0, 0.55), (0.45, 0.5), (0.6, 0.15), (0.82, 0.15), (0.86, 0.5), (1.0, 0.68), (1.0, 0.92), (0.0, 0.92)),
    "bag": ((0.1, 0.22), (0.9, 0.22), (1.0, 1.0), (0.0, 1.0)),
    "tent": ((0.5, 0.0), (1.0, 1.0), (0.0, 1.0)),
    "kettle": ((0.2, 0.1), (0.75, 0.1), (0.85, 1.0), (0.1, 1.0)),
    "lamp": ((0.25, 0.0), (0.75, 0.0), (0.95, 0.35), (0.05, 0.35)),
}


def _font(size: int) -> ImageFont.ImageFont:
    if size not in _FONTS:
        _FONTS[size] = ImageFont.load_default(size=size)
    return _FONTS[size]


def _hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    return tuple(int(round(255 * c)) for c in colorsys.hsv_to_rgb(h % 1.0, s, v))


def _scale(poly, box) -> list[tuple[float, float]]:
    x0, y0, x1, y1 = box
    return [(x0 + x * (x1 - x0), y0 + y * (y1 - y0)) for x, y in poly]


def _draw_shape(d: ImageDraw.ImageDraw, shape: str, box, main, accent) -> None:
    """Draw a rough silhouette of `shape` filling `box` (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    outline = tuple(max(0, c - 60) for c in main)
    if shape in _POLYGONS:
        d.polygon(_scale(_POLYGONS[shape], box), fill=main, outline=outline)
        if shape == "bag":
            d.arc((x0 + 0.3 * w, y0, x1 - 0.3 * w, y0 + 0.45 * h), 180, 360, fill=accent, width=max(2, int(w / 18)))
        elif shape == "kettle":
            d.arc((x1 - 0.35 * w, y0 + 0.25 * h, x1 + 0.1 * w, y0 + 0.75 * h), 270, 90, fill=accent, width=max(2, int(w / 14)))
        elif shape == "lamp":
            d.rectangle((x0 + 0.47 * w, y0 + 0.35 * h, x0 + 0.53 * w, y0 + 0.9 * h), fill=accent)
            d.ellipse((x0 + 0.25 * w, y0 + 0.85 * h, x0 + 0.75 * w, y1), fill=accent)
    elif shape in ("phone", "tv"):
        d.rounded_rectangle(box, radius=int(min(w, h) * 0.12), fill=main, outline=outline, width=2)
        m = 0.07 * min(w, h)
        d.rectangle((x0 + m, y0 + 2 * m, x1 - m, y1 - 2 * m), fill=accent)
    elif shape == "bottle":
        d.rectangle((x0 + 0.38 * w, y0, x0 + 0.62 * w, y0 + 0.18 * h), fill=accent)
        d.rounded_rectangle((x0, y0 + 0.15 * h, x1, y1), radius=int(w * 0.2), fill=main, outline=outline, width=2)
    elif shape in ("jar", "can", "cylinder"):
        d.rectangle((x0, y0 + 0.12 * h, x1, y1 - 0.12 * h), fill=main)
        d.ellipse((x0, y1 - 0.24 * h, x1, y1), fill=main, outline=outline)
        d.ellipse((x0, y0, x1, y0 + 0.24 * h), fill=accent, outline=outline)
    elif shape == "tube":
        d.rectangle((x0 + 0.3 * w, y0 + 0.45 * h, x1 - 0.3 * w, y1), fill=main)
        d.polygon(_scale(((0.35, 0.45), (0.65, 0.45), (0.65, 0.1), (0.35, 0.22)), box), fill=accent)
    elif shape == "earbuds":
        for cx in (0.3, 0.7):
            d.ellipse((x0 + (cx - 0.2) * w, y0 + 0.1 * h, x0 + (cx + 0.2) * w, y0 + 0.5 * h), fill=main, outline=outline)
            d.rectangle((x0 + (cx - 0.05) * w, y0 + 0.45 * h, x0 + (cx + 0.05) * w, y1), fill=accent)
    elif shape == "fan":
        d.ellipse((x0, y0, x1, y0 + 0.7 * h), outline=main, width=max(2, int(w / 20)))
        d.ellipse((x0 + 0.4 * w, y0 + 0.27 * h, x0 + 0.6 * w, y0 + 0.43 * h), fill=accent)
        d.rectangle((x0 + 0.47 * w, y0 + 0.7 * h, x0 + 0.53 * w, y1), fill=main)
    elif shape == "dumbbell":
        d.rectangle((x0 + 0.2 * w, y0 + 0.45 * h, x1 - 0.2 * w, y0 + 0.55 * h), fill=accent)
        for xa in (0.0, 0.75):
            d.rounded_rectangle((x0 + xa * w, y0 + 0.2 * h, x0 + (xa + 0.25) * w, y0 + 0.8 * h), radius=4, fill=main)
    elif shape == "cable":
        d.arc(box, 20, 340, fill=main, width=max(3, int(w / 12)))
        d.rectangle((x1 - 0.25 * w, y0 + 0.4 * h, x1, y0 + 0.6 * h), fill=accent)
    elif shape == "pillow":
        d.rounded_rectangle(box, radius=int(min(w, h) * 0.35), fill=main, outline=outline, width=2)
    else:  # box
        d.rectangle(box, fill=main, outline=outline, width=2)
        d.line((x0, y0 + 0.2 * h, x1, y0 + 0.2 * h), fill=accent, width=max(2, int(h / 25)))


def _draw_pattern(d: ImageDraw.ImageDraw, pattern: str, box, colour) -> None:
    x0, y0, x1, y1 = box
    if pattern == "stripes":
        for y in np.arange(y0 + 0.3 * (y1 - y0), y1, (y1 - y0) / 9):
            d.line((x0 + 0.2 * (x1 - x0), y, x1 - 0.2 * (x1 - x0), y), fill=colour, width=2)
    elif pattern == "dots":
        for y in np.arange(y0 + 0.35 * (y1 - y0), y1 - 8, (y1 - y0) / 6):
            for x in np.arange(x0 + 0.3 * (x1 - x0), x1 - 0.25 * (x1 - x0), (x1 - x0) / 6):
                d.ellipse((x - 3, y - 3, x + 3, y + 3), fill=colour)
    elif pattern == "band":
        d.rectangle((x0 + 0.22 * (x1 - x0), y0 + 0.62 * (y1 - y0), x1 - 0.22 * (x1 - x0), y0 + 0.7 * (y1 - y0)), fill=colour)


def _draw_product(row) -> Image.Image:
    """The product itself (RGBA, transparent background): model silhouette, look colours, label text."""
    design, colours = row["design"], row["colours"]
    img = Image.new("RGBA", (_CANVAS, _CANVAS), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    aw, ah = design["aspect"]
    w, h = _CANVAS * min(aw, 0.92), _CANVAS * min(ah, 0.92)
    box = ((_CANVAS - w) / 2, (_CANVAS - h) / 2, (_CANVAS + w) / 2, (_CANVAS + h) / 2)
    main = _COLOURS[row["image_colour"] if isinstance(row["image_colour"], str) else colours[0]]
    accent = _hsv(design["hue"], design["sat"], design["val"])
    _draw_shape(d, row["shape"], box, main, accent)
    ink = (20, 20, 20) if sum(main) > 380 else (245, 245, 245)
    _draw_pattern(d, design["pattern"], box, accent)
    # no spec on the drawing: spec variants share one image, so only their texts tell them apart
    lines = [row["brand_en"][:9], row["model_name"] if row["model_name"].isascii() else ""]
    y = box[1] + 0.3 * h
    for text, size in zip(lines, (22, 18, 16)):
        if text:
            d.text((_CANVAS / 2, y), text, fill=ink, font=_font(size), anchor="mm")
            y += size + 4
    return img


def _background(rng: np.random.Generator) -> Image.Image:
    """A listing background: plain white, a light colour, a gradient or a noisy 'scene'."""
    r = rng.random()
    if r < 0.5:
        return Image.new("RGB", (_CANVAS, _CANVAS), (255, 255, 255))
    c0 = rng.integers(150, 256, size=3)
    if r < 0.75:
        return Image.new("RGB", (_CANVAS, _CANVAS), tuple(int(c) for c in c0))
    c1 = rng.integers(60, 256, size=3)
    t = np.linspace(0, 1, _CANVAS)[:, None, None]
    grad = (c0 * (1 - t) + c1 * t) * np.ones((1, _CANVAS, 1))
    if r > 0.9:
        grad = grad + rng.normal(0, 18, size=grad.shape)
    return Image.fromarray(np.clip(grad, 0, 255).astype(np.uint8), "RGB")


def _render_listing(product: Image.Image, rng: np.random.Generator, size: int) -> bytes:
    """A seller's photo of `product`: background, scale, shift, rotation, flip, light, crop, banner, JPEG."""
    img = _background(rng)
    s = float(rng.uniform(0.6, 1.0))
    layer = product.resize((max(8, int(_CANVAS * s)),) * 2, Image.BILINEAR)
    if _coin(rng, 0.15):
        layer = layer.transpose(Image.FLIP_LEFT_RIGHT)
    layer = layer.rotate(float(np.clip(rng.normal(0, 7), -20, 20)), resample=Image.BILINEAR)
    slack = _CANVAS - layer.width
    img.paste(layer, (int(rng.integers(0, slack + 1)), int(rng.integers(0, slack + 1))), layer)
    img = ImageEnhance.Brightness(img).enhance(float(rng.uniform(0.75, 1.25)))
    img = ImageEnhance.Contrast(img).enhance(float(rng.uniform(0.8, 1.2)))
    img = ImageEnhance.Color(img).enhance(float(rng.uniform(0.7, 1.3)))
    crop = int(_CANVAS * float(rng.uniform(0.0, 0.15)))
    cx, cy = int(rng.integers(0, crop + 1)), int(rng.integers(0, crop + 1))
    img = img.crop((cx, cy, cx + _CANVAS - crop, cy + _CANVAS - crop)).resize((size, size), Image.BILINEAR)
    if _coin(rng, 0.25):
        d = ImageDraw.Draw(img)
        bh = max(10, size // 7)
        d.rectangle((0, size - bh, size, size), fill=_hsv(float(rng.random()), 0.8, 0.85))
        d.text((size / 2, size - bh / 2), _pick(rng, _BANNERS), fill=(255, 255, 255), font=_font(max(8, bh - 4)), anchor="mm")
    if _coin(rng, 0.1):
        img = img.filter(ImageFilter.GaussianBlur(0.8))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=int(rng.integers(55, 96)))
    return buf.getvalue()


def _write_images(items: pd.DataFrame, out: Path, seed: int, cfg: _Preset) -> int:
    """Draw each (model, look) once and write one JPEG per listing that names an image; returns the count."""
    rows = items.assign(_image=[r.get("item_image_name") or "" for r in items["record"]])
    rows = rows[rows["_image"] != ""]
    lo, hi = cfg.image_px
    drawings = rows.groupby(["model", "look"], sort=True)
    for _, group in tqdm(drawings, total=drawings.ngroups, desc="ccks images", unit="drawing", disable=None):
        drawn = _draw_product(group.iloc[0])
        for _, row in group.iterrows():
            rng = np.random.default_rng([seed, 2, int(row["product"]), int(row.name)])
            size = int(rng.integers(lo, hi + 1))
            write_bytes(out / f"item_{row['split']}_images" / row["_image"], _render_listing(drawn, rng, size))
    return len(rows)


# ----------------------------------------------------------------------------------------------
# Writing.
# ----------------------------------------------------------------------------------------------
def _jsonl(objs) -> str:
    return "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objs)


def _pair_objs(pairs: pd.DataFrame, labelled: bool) -> list[dict]:
    cols = list(PAIR_KEYS if labelled else PAIR_KEYS[:2])
    frame = pairs[cols].astype({"item_label": str}) if labelled else pairs[cols]
    return frame.to_dict("records")


def _output_files(out: Path) -> dict[str, Path]:
    names = ("item_train_info.jsonl", "item_train_pair.jsonl", "item_valid_info.jsonl", "item_valid_pair.jsonl",
             "item_valid_pair_truth.jsonl")
    return {name: out / name for name in names}


def _refuse_existing(out: Path) -> None:
    """FileExistsError naming the first output (JSONL file or non-empty image folder) already there."""
    targets = list(_output_files(out).values()) + [out / "item_train_images", out / "item_valid_images"]
    for path in targets:
        if path.is_file() or (path.is_dir() and any(path.iterdir())):
            raise FileExistsError(f"{path} already exists; pass --overwrite (overwrite=True) to replace it")


@register("ccks")
def generate_ccks(out: Path, *, seed: int, preset: str, overwrite: bool = False) -> SynthReport:
    """Write the synthetic CCKS 2022 task 9.2 set into `out`: train/valid info, pairs, truth, images.

    Deterministic: the same seed and preset give byte-identical JSONL. Images are written first and
    the JSONL files last (atomically), so a crash never leaves item files pointing at missing images.
    With overwrite=True, images of an earlier run that the new item files no longer name are left.
    """
    if preset not in PRESET_CONFIG:
        raise ValueError(f"unknown preset {preset!r}; choose one of {tuple(PRESET_CONFIG)}")
    out = Path(out)
    if not overwrite:
        _refuse_existing(out)
    cfg = PRESET_CONFIG[preset]
    items, pairs = build_ccks_tables(seed, preset)
    n_images = _write_images(items, out, seed, cfg)
    files = _output_files(out)
    train_pairs, valid_pairs = pairs[pairs["split"] == "train"], pairs[pairs["split"] == "valid"]
    contents = {
        "item_train_info.jsonl": list(items.loc[items["split"] == "train", "record"]),
        "item_train_pair.jsonl": _pair_objs(train_pairs, labelled=True),
        "item_valid_info.jsonl": list(items.loc[items["split"] == "valid", "record"]),
        "item_valid_pair.jsonl": _pair_objs(valid_pairs, labelled=False),
        "item_valid_pair_truth.jsonl": _pair_objs(valid_pairs, labelled=True),
    }
    for name, objs in contents.items():
        write_text(files[name], _jsonl(objs))
    return SynthReport(out=out, files=list(files.values()), counts=_counts(items, pairs, n_images))


def _counts(items: pd.DataFrame, pairs: pd.DataFrame, n_images: int) -> dict[str, int]:
    counts = {"images": n_images}
    for split in ("train", "valid"):
        sp = pairs[pairs["split"] == split]
        counts[f"{split}_items"] = int((items["split"] == split).sum())
        counts[f"{split}_pairs"] = len(sp)
        counts[f"{split}_positive"] = int(sp["item_label"].sum())
        counts[f"{split}_hard_negative"] = int(sp["kind"].isin(HARD_KINDS).sum())
        counts[f"{split}_easy_negative"] = int((sp["kind"] == "easy").sum())
        counts.update(_modality_counts(items, sp, split))
    counts["valid_unseen_cate_pairs"] = int(pairs.loc[pairs["split"] == "valid", "unseen"].sum())
    counts["unseen_leaf_categories"] = int(items.loc[items["unseen"], "leaf"].nunique())
    counts["leaf_categories"] = int(items["leaf"].nunique())
    return counts


def _modality_counts(items: pd.DataFrame, pairs: pd.DataFrame, split: str) -> dict[str, int]:
    """Pairs that one modality alone decides: image-only negatives (look variants), text-only
    negatives (spec variants: one drawing), image-only positives (a generic seller's listing on
    one side), text-only positives (an item without an image on one side)."""
    by_id = items.set_index("item_id")
    generic = by_id["generic"].to_numpy(bool)
    has_image = np.array([bool(r.get("item_image_name")) for r in by_id["record"]])
    index = by_id.index
    a, b = index.get_indexer(pairs["src_item_id"]), index.get_indexer(pairs["tgt_item_id"])
    positive = pairs["item_label"].to_numpy() == 1
    kinds = pairs["kind"].to_numpy()
    return {f"{split}_image_only_negative": int(np.isin(kinds, IMAGE_ONLY_KINDS).sum()),
            f"{split}_text_only_negative": int(np.isin(kinds, TEXT_ONLY_KINDS).sum()),
            f"{split}_image_only_positive": int((positive & (generic[a] | generic[b])).sum()),
            f"{split}_text_only_positive": int((positive & ~(has_image[a] & has_image[b])).sum())}
