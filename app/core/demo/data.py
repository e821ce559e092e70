"""Word lists for the demo community (``app.core.demo``): names, places, trades.

Every person and organisation the demo makes is a random combination of these pieces, so the
names are fictional. Area codes are real GB/T 2260 county codes (an ID number must carry a known
one); their place names come from the shipped region table, not from here. Lists are written
as split strings to keep the file short.
"""

from __future__ import annotations

from itertools import accumulate


def _words(text: str) -> list[str]:
    return text.split()


def _weighted(text: str) -> tuple[list[str], list[int]]:
    """'code:weight code:weight' -> (codes, cumulative weights), the form random.choices wants."""
    pairs = [item.split(":") for item in text.split()]
    return [code for code, _ in pairs], list(accumulate(int(weight) for _, weight in pairs))


def _rows(text: str) -> list[tuple[str, ...]]:
    """Split 'a:b:c a:b:c' into [(a, b, c), ...]."""
    return [tuple(item.split(":")) for item in text.split()]


# Common surnames, most frequent first (``run.Run`` draws them with a falling weight).
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余于杜叶程"
    "魏苏吕丁任卢姚沈钟姜崔谭陆范汪廖石金韦贾夏付方邹熊白孟秦邱侯江尹薛闫段雷龙黎史陶贺毛郝顾"
    "龚邵万覃武钱戴严莫孔向常汤康易乔赖文施洪楼俞童应项裘竺"
)
MALE_CHARS = (
    "伟强磊军勇杰涛斌超明刚平辉鹏华飞鑫波宇浩凯健俊帆帅旭宁龙林阳"
    "建亮成立志峰宏晨博豪然睿轩宸铭哲栋彬"
)
FEMALE_CHARS = "芳娜敏静丽艳娟霞燕玲英萍红梅琳雪慧婷颖倩洁欣悦怡妍萱涵琪晶璐瑶佳雯蕾嘉菲彤蓉岚薇莉"
NEUTRAL_CHARS = "文子一思天嘉安雨晓心家俊春秋永德志国海云"

MOBILE_PREFIXES = _words(
    "130 131 132 135 136 137 138 139 150 151 152 155 157 158 159 166 177 180 186 189"
)
STREET_NAME, STREET_CODE = "清溪街道", "090"  # fictional street office, its 乡镇 code
COMMUNITY_WORDS = _words(
    "幸福 桂花 紫荆 和平 清风 明月 银杏 玉兰 翠竹 丹桂 枫林 春晖 "
    "锦绣 金沙 碧波 青枫 竹韵 荷风 梧桐 海棠 芳草 晴川 云溪 兰亭"
)
COMMUNITY_PREFIXES = ("", "新", "东", "西", "南", "北")  # when the words run out
ROAD_WORDS = _words(
    "文澜 桂香 紫藤 香樟 云杉 松涛 清泉 梅岭 芙蓉 丁香 翠柏 百合 "
    "杏林 望湖 听涛 栖霞 晓岚 观澜 青竹 白鹭 秋实 映月 沁园 长庆"
)
ROAD_SUFFIXES = _words("路 路 街 巷")
COMPOUND_SUFFIXES = _words("苑 花园 小区 公寓 家园 新村 雅苑 名邸")

# Where people come from: GB/T 2260 county codes with weights.
LOCAL_AREAS = _weighted(
    "330106:60 330105:6 330102:6 330108:4 330110:4 330109:3 330111:2 330122:2 330381:2 "
    "330521:2 330602:2 330681:2 330702:1 330782:1 330802:1 331002:1 331081:1"
)
OTHER_DISTRICTS = ("330105", "330102", "330108")  # 人户不一致: registered there, living here
MIGRANT_AREAS = _weighted(
    "341202:6 341221:4 341623:4 340104:3 362502:3 360421:3 360102:2 412702:5 411502:4 410105:2 "
    "410302:2 421102:3 420106:2 430602:3 431102:3 430104:2 511302:3 511623:3 510107:2 500241:3 "
    "500103:2 522601:3 452601:2 450103:1 320106:1 370102:1 371302:2 140105:1 130102:1 230103:1 "
    "350102:1 441302:1 530102:1 610113:1 620102:1"
)
TOWN_WORDS = _words("城关 新集 柳河 石桥 双庙 李庄 高塘 白沙 黄岗 清河 陈集 大王")
VILLAGE_WORDS = _words("前进 红星 胜利 东湖 西岗 南李 北陈 小河 杨柳 新庄 张湾 桃园")

MINORITIES = _weighted("03:3 06:2 08:2 15:2 11:2 02:1 10:1 22:1")  # GB/T 3304; others 01 汉族
ADULT_EDUCATION = _words("21 21 31 14 61 71 44")  # GB/T 4658, under 55
OLDER_EDUCATION = _words("61 71 81 31")

# GB/T 6565 major group : occupation : kind of workplace.
JOBS = _rows(
    "2:工程师:company 2:软件开发:company 2:教师:school 2:医生:hospital 2:护士:hospital "
    "2:会计:company 3:职员:company 3:行政文员:company 1:部门经理:company 4:销售员:company "
    "4:厨师:shop 4:快递员:courier 4:保安:company 4:外卖骑手:courier 4:保洁员:company "
    "4:美发师:shop 4:店员:shop 6:装修工:company 6:电工:company 6:普工:factory"
)
SCHOOLS = _words("清溪小学 清溪第二小学 清溪中学 西湖区实验学校 文澜中学")
COLLEGE = "杭州文澜学院"
HOSPITALS = _words("清溪社区卫生服务中心 西湖区人民医院 杭州市第九人民医院")
COURIERS = _words("杭州顺达速运有限公司 杭州闪送配送服务有限公司 杭州云途物流有限公司")

BRAND_WORDS = _words(
    "启明 汇智 云帆 星河 博远 恒信 嘉禾 瑞丰 优途 睿德 鼎盛 易联 "
    "青禾 致远 南山 合众 晨光 宏图 信达 安泰 弘毅 天成 聚源 凯瑞"
)
INDUSTRIES = _rows(  # industry : business scope
    "科技:技术开发、技术服务 网络科技:网络技术服务、软件开发 文化传媒:文化艺术交流、广告设计 "
    "设计:建筑装饰设计 贸易:日用百货批发零售 教育科技:教育信息咨询 物业管理:物业服务、保洁服务 "
    "餐饮管理:餐饮企业管理、餐饮服务"
)
TRADES = _rows(  # individual businesses (个体工商户): shop : business scope
    "便利店:日用百货、预包装食品零售 面馆:餐饮服务 理发店:理发服务 水果店:水果零售 "
    "洗衣店:洗衣服务 五金店:五金交电零售 早餐店:餐饮服务 花店:鲜花零售 茶叶店:茶叶零售 "
    "眼镜店:眼镜验配零售 快餐店:餐饮服务 药房:药品零售 烟酒店:烟草制品、酒类零售 "
    "烘焙坊:糕点制售 修车铺:自行车、电动车维修"
)
SHOP_BRANDS = _words(
    "顺心 好运来 惠民 福满 鑫鑫 老街坊 百家 邻里 阿芳 小林 "
    "宏发 家和 乐购 新鲜 四季 金牌 老地方 快乐 一品 如意"
)

# Foreign residents per country (ISO 3166 alpha-3): passport prefix, surnames LATIN:中文,
# given names LATIN:中文:m|f. East-Asian names are written surname first in Chinese.
FOREIGNERS = {
    "KOR": (
        "M",
        "KIM:金 LEE:李 PARK:朴 CHOI:崔",
        "MINJUN:敏俊:m JIHO:智浩:m SEOYEON:瑞妍:f JIWOO:智友:f",
    ),
    "JPN": (
        "TK",
        "SATO:佐藤 SUZUKI:铃木 TANAKA:田中 ITO:伊藤",
        "HARUTO:阳翔:m SOTA:飒太:m YUI:结衣:f HINA:阳菜:f",
    ),
    "USA": (
        "5",
        "SMITH:史密斯 MILLER:米勒 BROWN:布朗 DAVIS:戴维斯",
        "JAMES:詹姆斯:m DAVID:大卫:m EMILY:艾米丽:f SARAH:萨拉:f",
    ),
    "DEU": (
        "C",
        "SCHMIDT:施密特 FISCHER:菲舍尔 WEBER:韦伯",
        "LUKAS:卢卡斯:m JONAS:约纳斯:m ANNA:安娜:f LENA:莉娜:f",
    ),
    "FRA": (
        "19",
        "MARTIN:马丁 BERNARD:贝尔纳 MOREAU:莫罗",
        "LOUIS:路易:m HUGO:雨果:m CAMILLE:卡米耶:f CHLOE:克洛埃:f",
    ),
    "RUS": (
        "75",
        "IVANOV:伊万诺夫 SMIRNOV:斯米尔诺夫 POPOV:波波夫",
        "ALEXEI:阿列克谢:m DMITRY:德米特里:m OLGA:奥尔加:f",
    ),
    "THA": ("AA", "SRISUK:西苏 CHAIYA:猜亚 WONG:翁", "SOMCHAI:颂猜:m ANAN:阿南:m MALI:玛丽:f"),
    "VNM": ("C", "NGUYEN:阮 TRAN:陈 LE:黎", "MINH:明:m DUC:德:m LAN:兰:f HOA:花:f"),
}
SURNAME_FIRST = ("KOR", "JPN", "VNM")
# 来华目的 : occupation : workplace of the first person of a foreign household.
FOREIGN_JOBS = _rows(
    "02:外语教师:文澜中学 01:商务代表:杭州启明贸易有限公司 "
    "03:留学生:杭州文澜学院 02:工程师:杭州汇智科技有限公司"
)
