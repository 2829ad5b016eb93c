#!/usr/bin/env python3
"""Deterministic generator for dvload's bundled sample data.

Writes, next to this script:
  accounts.csv  - UTF-8 (no BOM), comma-separated, CRLF, 1,200 data rows
  contacts.csv  - UTF-8 with BOM, semicolon-separated, LF, 2,400 data rows
  leads.jsonl   - JSON Lines, LF, 500 lines

Python 3.11+ standard library only, fixed seed, no network, no time zone
database needed (the EU/UK summer-time rule is computed here).  Re-running
the script reproduces the three files byte for byte, whatever PYTHONHASHSEED.

    python3 samples/generate.py            # write the files, print a summary

"Data row" = 1-based record number, header excluded.  "Physical line" =
1-based line of the file (the header is line 1).

DELIBERATELY BAD ROWS (each row has exactly one defect; everything else in
it is clean and canonical):

  accounts.csv   data row  physical line  defect
                 137       139            Industry = "Aerospace" (unknown label)
                 412       415            Customer Since = "31/02/2019" (impossible date)
                 655       659            ragged: 13 fields; the trailing Notes field is missing
                 873       879            Employees = "twelve"
                 1044      1050           Company name is 169 characters (> 160)

  contacts.csv   data row  physical line  defect
                 318       319            Account No = "ACC-99999" (no such account;
                                          only rejected by Dataverse on write)
                 1207      1208           Birth Date = "1990-02-30" (impossible date)
                 1650      1651           Interests contains "Knitting" (unknown label)
                 2111      2112           Preferred Contact = "Pigeon" (unknown label)

  leads.jsonl    line  defect
                 77    malformed JSON: the closing brace is missing
                 191   "estimated_value":"lots"
                 333   "rating":"Lukewarm"
                 468   "topic":"" (topic is required)

accounts.csv has quoted Notes with embedded line breaks (LF inside the quoted
field, CRLF between records) in data rows 45, 298, 590, 777 (two line breaks)
and 1101, so physical line != data row + 1 from row 46 onward.
"""

from __future__ import annotations

import calendar
import csv
import hashlib
import json
import math
import random
import sys
import unicodedata
from datetime import date, datetime, timedelta
from pathlib import Path

SEED = 20240517
OUT_DIR = Path(__file__).resolve().parent

N_ACCOUNTS = 1200
N_PARENTS = 120
CHILDREN_AFTER_ROW = 300
N_CONTACTS = 2400
N_LEADS = 500

ACC_BAD_INDUSTRY = 137
ACC_BAD_DATE = 412
ACC_RAGGED = 655
ACC_BAD_EMPLOYEES = 873
ACC_LONG_NAME = 1044
ACC_BAD_ROWS = {ACC_BAD_INDUSTRY, ACC_BAD_DATE, ACC_RAGGED, ACC_BAD_EMPLOYEES, ACC_LONG_NAME}
# data row -> note containing embedded line break(s)
ACC_MULTILINE_NOTES = {
    45: "Head office moved to new premises in 2022.\nNew address confirmed by phone.",
    298: 'Escalations go to "Jane" in Accounts Payable,\nnot to the switchboard.',
    590: "Framework agreement FA-2021-07 renewed.\nNext review due Q1.",
    777: "Site visit 12/05/2023, all OK.\nFollow-up call booked, see activity.\nClosed out by D. Pritchard.",
    1101: "Credit limit raised to £50,000 after review,\napproved by FD.",
}

CON_BAD_ACCOUNT = 318
CON_BAD_BIRTH = 1207
CON_BAD_INTEREST = 1650
CON_BAD_PREFERRED = 2111
CON_BAD_ROWS = {CON_BAD_ACCOUNT, CON_BAD_BIRTH, CON_BAD_INTEREST, CON_BAD_PREFERRED}

LEAD_MALFORMED = 77
LEAD_BAD_VALUE = 191
LEAD_BAD_RATING = 333
LEAD_EMPTY_TOPIC = 468

# --------------------------------------------------------------------------
# Reference data
# --------------------------------------------------------------------------

INDUSTRIES = [
    "Accounting", "Agriculture", "Brokers", "Business Services", "Consulting",
    "Financial", "Insurance", "Legal Services", "Transportation", "Wholesale",
    "Design", "Entertainment Retail", "Food and Tobacco Processing",
    "Utility Creation and Distribution",
]
INDUSTRY_WEIGHTS = [8, 4, 4, 12, 11, 9, 6, 7, 10, 10, 6, 3, 5, 5]

# English trade words, used in every country
TRADE_EN = {
    "Accounting": ["Accountants", "Accountancy", "Audit & Tax", "Chartered Accountants", "Tax Advisory"],
    "Agriculture": ["Farms", "Agriculture", "Growers", "Agri Services", "Agronomy", "Seeds"],
    "Brokers": ["Brokers", "Broking", "Commodity Brokers", "Securities", "Capital Markets"],
    "Business Services": ["Business Services", "Facilities Management", "Office Solutions",
                          "Outsourcing", "Payroll Services", "Recruitment"],
    "Consulting": ["Consulting", "Consultancy", "Advisory", "Management Consultants", "Partners"],
    "Financial": ["Finance", "Capital", "Asset Management", "Wealth Management", "Investments", "Leasing"],
    "Insurance": ["Insurance", "Insurance Services", "Assurance", "Underwriting", "Risk Services"],
    "Legal Services": ["Solicitors", "Legal", "Law", "Legal Services"],
    "Transportation": ["Logistics", "Haulage", "Freight", "Transport", "Shipping", "Couriers"],
    "Wholesale": ["Wholesale", "Trading", "Supplies", "Distributors", "Cash & Carry", "Importers"],
    "Design": ["Design", "Design Studio", "Architects", "Interiors", "Creative", "Branding"],
    "Entertainment Retail": ["Games", "Music & Media", "Leisure", "Entertainment", "Records", "Cinemas"],
    "Food and Tobacco Processing": ["Foods", "Food Processing", "Bakeries", "Dairies", "Meats",
                                    "Tobacco", "Milling", "Confectionery"],
    "Utility Creation and Distribution": ["Energy", "Power", "Water", "Renewables", "Utilities",
                                          "Gas Networks", "Grid Services"],
}

# Local-language trade words (used about half the time in that country)
TRADE_LOCAL = {
    "de": {
        "Accounting": ["Steuerberatung", "Wirtschaftsprüfung"], "Agriculture": ["Agrar", "Landhandel"],
        "Brokers": ["Finanzmakler", "Makler"], "Business Services": ["Dienstleistungen", "Gebäudeservice"],
        "Consulting": ["Beratung", "Unternehmensberatung"], "Financial": ["Finanz", "Vermögensverwaltung"],
        "Insurance": ["Versicherung", "Versicherungsmakler"], "Legal Services": ["Rechtsanwälte"],
        "Transportation": ["Logistik", "Spedition", "Transporte"], "Wholesale": ["Großhandel", "Handel"],
        "Design": ["Design", "Architekten"], "Entertainment Retail": ["Medien", "Unterhaltung"],
        "Food and Tobacco Processing": ["Lebensmittel", "Bäckerei", "Molkerei", "Fleischwaren"],
        "Utility Creation and Distribution": ["Energie", "Stadtwerke", "Wasser"],
    },
    "fr": {
        "Accounting": ["Expertise Comptable", "Audit"], "Agriculture": ["Agricole", "Coopérative Agricole"],
        "Brokers": ["Courtage"], "Business Services": ["Services aux Entreprises"],
        "Consulting": ["Conseil"], "Financial": ["Finance", "Gestion de Patrimoine"],
        "Insurance": ["Assurances"], "Legal Services": ["Avocats"],
        "Transportation": ["Transports", "Logistique"], "Wholesale": ["Distribution", "Négoce"],
        "Design": ["Design", "Architecture"], "Entertainment Retail": ["Loisirs", "Divertissement"],
        "Food and Tobacco Processing": ["Alimentaire", "Laiterie", "Boulangerie Industrielle"],
        "Utility Creation and Distribution": ["Énergie", "Eaux"],
    },
    "nl": {
        "Accounting": ["Accountants", "Belastingadvies"], "Agriculture": ["Agro", "Kwekerij"],
        "Brokers": ["Makelaars"], "Business Services": ["Zakelijke Dienstverlening"],
        "Consulting": ["Advies"], "Financial": ["Financiële Diensten"],
        "Insurance": ["Verzekeringen"], "Legal Services": ["Advocaten"],
        "Transportation": ["Transport", "Logistiek"], "Wholesale": ["Groothandel", "Handel"],
        "Design": ["Ontwerp", "Architecten"], "Entertainment Retail": ["Entertainment"],
        "Food and Tobacco Processing": ["Voedingsmiddelen", "Bakkerij", "Zuivel"],
        "Utility Creation and Distribution": ["Energie", "Water"],
    },
    "es": {
        "Accounting": ["Asesores"], "Agriculture": ["Agrícola"], "Brokers": ["Correduría"],
        "Business Services": ["Servicios Empresariales"], "Consulting": ["Consultoría"],
        "Financial": ["Finanzas"], "Insurance": ["Seguros"], "Legal Services": ["Abogados"],
        "Transportation": ["Transportes"], "Wholesale": ["Distribuciones"], "Design": ["Diseño"],
        "Entertainment Retail": ["Ocio"], "Food and Tobacco Processing": ["Alimentación"],
        "Utility Creation and Distribution": ["Energía"],
    },
    "it": {
        "Accounting": ["Commercialisti"], "Agriculture": ["Agricola"], "Brokers": ["Broker"],
        "Business Services": ["Servizi"], "Consulting": ["Consulenza"], "Financial": ["Finanziaria"],
        "Insurance": ["Assicurazioni"], "Legal Services": ["Legale"], "Transportation": ["Trasporti"],
        "Wholesale": ["Ingrosso"], "Design": ["Design"], "Entertainment Retail": ["Intrattenimento"],
        "Food and Tobacco Processing": ["Alimentari"], "Utility Creation and Distribution": ["Energia"],
    },
}

PLACE_WORDS = [
    "Thames", "Pennine", "Severn", "Mersey", "Cotswold", "Chiltern", "Humber", "Clyde", "Solent",
    "Tyne", "Wessex", "Mercia", "Northumbria", "Highland", "Caledonian", "Albion", "Kingsbridge",
    "Ashdown", "Weald", "Fenland", "Moorland", "Harbour", "Riverside", "Westgate", "Northgate",
    "Castlegate", "Dales", "Malvern", "Mendip", "Trent",
]
BRAND_WORDS = [
    "Blue Fern", "Silverline", "Greenfield", "Redwood", "Oakwood", "Brightwater", "Keystone",
    "Cornerstone", "Summit", "Northstar", "Meridian", "Lighthouse", "Horizon", "Beacon", "Sterling",
    "Crown", "Apex", "Evergreen", "Ironbridge", "Kestrel", "Falcon", "Heron", "Osprey", "Bluebell",
    "Quayside", "Foxglove", "Granite", "Copperleaf", "Halcyon", "Larkspur",
]

# country code -> data
COUNTRIES = {
    "GB": dict(name="United Kingdom", weight=55, lang="en", tz_std=0, tlds=[".co.uk"] * 4 + [".com"],
               suffixes=["Ltd"] * 6 + ["Limited", "plc"], partnership="LLP", local_name="UK",
               email_prefixes=["info", "enquiries", "hello", "accounts", "sales", "office", "admin"]),
    "IE": dict(name="Ireland", weight=6, lang="en", tz_std=0, tlds=[".ie"] * 3 + [".com"],
               suffixes=["Ltd", "Ltd", "DAC", "Unlimited Company"], partnership="LLP", local_name="Ireland",
               email_prefixes=["info", "hello", "accounts", "sales"]),
    "DE": dict(name="Germany", weight=8, lang="de", tz_std=1, tlds=[".de"] * 4 + [".com"],
               suffixes=["GmbH"] * 4 + ["AG", "GmbH & Co. KG"], partnership="PartG mbB", local_name="Deutschland",
               email_prefixes=["info", "kontakt", "service"]),
    "FR": dict(name="France", weight=7, lang="fr", tz_std=1, tlds=[".fr"] * 3 + [".com"],
               suffixes=["SAS", "SAS", "SA", "SARL"], partnership="SELARL", local_name="France",
               email_prefixes=["contact", "info"]),
    "NL": dict(name="Netherlands", weight=6, lang="nl", tz_std=1, tlds=[".nl"] * 4 + [".com"],
               suffixes=["B.V.", "B.V.", "B.V.", "N.V."], partnership="B.V.", local_name="Nederland",
               email_prefixes=["info", "contact"]),
    "BE": dict(name="Belgium", weight=3, lang="nl", tz_std=1, tlds=[".be"] * 3 + [".eu"],
               suffixes=["NV", "BV", "SA", "SRL"], partnership="BV", local_name="Belgium",
               email_prefixes=["info", "contact"]),
    "ES": dict(name="Spain", weight=4, lang="es", tz_std=1, tlds=[".es"] * 3 + [".com"],
               suffixes=["S.L.", "S.L.", "S.A."], partnership="S.L.P.", local_name="España",
               email_prefixes=["info", "contacto"]),
    "IT": dict(name="Italy", weight=4, lang="it", tz_std=1, tlds=[".it"] * 3 + [".com"],
               suffixes=["S.r.l.", "S.r.l.", "S.p.A."], partnership="S.T.P.", local_name="Italia",
               email_prefixes=["info", "amministrazione"]),
    "SE": dict(name="Sweden", weight=3, lang="en", tz_std=1, tlds=[".se"] * 3 + [".com"],
               suffixes=["AB"], partnership="AB", local_name="Sverige",
               email_prefixes=["info", "kontakt"]),
    "DK": dict(name="Denmark", weight=2, lang="en", tz_std=1, tlds=[".dk"] * 3 + [".com"],
               suffixes=["A/S", "ApS"], partnership="I/S", local_name="Danmark",
               email_prefixes=["info", "kontakt"]),
    "PL": dict(name="Poland", weight=2, lang="en", tz_std=1, tlds=[".pl"] * 3 + [".com"],
               suffixes=["Sp. z o.o.", "Sp. z o.o.", "S.A."], partnership="Sp.k.", local_name="Polska",
               email_prefixes=["biuro", "kontakt", "info"]),
}
COUNTRY_CODES = list(COUNTRIES)
COUNTRY_WEIGHTS = [COUNTRIES[c]["weight"] for c in COUNTRY_CODES]

# city, landline pattern.  UK numbers use Ofcom's reserved drama ranges.
# Pattern letters: 'd' = random digit.
CITIES = {
    "GB": [
        ("London", "20 7946 0ddd", 10), ("Manchester", "161 496 0ddd", 4), ("Birmingham", "121 496 0ddd", 4),
        ("Leeds", "113 496 0ddd", 3), ("Glasgow", "141 496 0ddd", 3), ("Edinburgh", "131 496 0ddd", 3),
        ("Bristol", "117 496 0ddd", 3), ("Liverpool", "151 496 0ddd", 2), ("Sheffield", "114 496 0ddd", 2),
        ("Nottingham", "115 496 0ddd", 2), ("Leicester", "116 496 0ddd", 1), ("Reading", "118 496 0ddd", 2),
        ("Newcastle upon Tyne", "191 498 0ddd", 2), ("Cardiff", "29 2018 0ddd", 2), ("Belfast", "28 9018 0ddd", 1),
    ],
    "IE": [("Dublin", "1 ddd dddd", 5), ("Cork", "21 ddd dddd", 2), ("Galway", "91 ddd dddd", 1),
           ("Limerick", "61 ddd ddd", 1)],
    "DE": [("Berlin", "30 dddddddd", 3), ("Hamburg", "40 dddddddd", 3), ("München", "89 dddddddd", 3),
           ("Frankfurt am Main", "69 dddddddd", 3), ("Köln", "221 ddddddd", 2), ("Düsseldorf", "211 ddddddd", 2),
           ("Stuttgart", "711 ddddddd", 2)],
    "FR": [("Paris", "1 dd dd dd dd", 5), ("Lyon", "4 dd dd dd dd", 2), ("Marseille", "4 dd dd dd dd", 1),
           ("Toulouse", "5 dd dd dd dd", 1), ("Lille", "3 dd dd dd dd", 1), ("Bordeaux", "5 dd dd dd dd", 1),
           ("Nantes", "2 dd dd dd dd", 1)],
    "NL": [("Amsterdam", "20 ddd dddd", 4), ("Rotterdam", "10 ddd dddd", 3), ("Utrecht", "30 ddd dddd", 2),
           ("Eindhoven", "40 ddd dddd", 1), ("Den Haag", "70 ddd dddd", 1)],
    "BE": [("Brussels", "2 ddd dd dd", 3), ("Antwerpen", "3 ddd dd dd", 2), ("Gent", "9 ddd dd dd", 1),
           ("Liège", "4 ddd dd dd", 1)],
    "ES": [("Madrid", "91d ddd ddd", 3), ("Barcelona", "93d ddd ddd", 3), ("Valencia", "96d ddd ddd", 1),
           ("Sevilla", "95d ddd ddd", 1), ("Bilbao", "94d ddd ddd", 1)],
    "IT": [("Milano", "02 dddd dddd", 3), ("Roma", "06 dddd dddd", 2), ("Torino", "011 ddd dddd", 1),
           ("Bologna", "051 ddd dddd", 1)],
    "SE": [("Stockholm", "8 ddd ddd dd", 3), ("Göteborg", "31 ddd dd dd", 2), ("Malmö", "40 ddd dd dd", 1)],
    "DK": [("København", "dd dd dd dd", 3), ("Aarhus", "dd dd dd dd", 1), ("Odense", "dd dd dd dd", 1)],
    "PL": [("Warszawa", "22 ddd dd dd", 3), ("Kraków", "12 ddd dd dd", 2), ("Wrocław", "71 ddd dd dd", 1),
           ("Łódź", "42 ddd dd dd", 1)],
}
DIAL = {"GB": "44", "IE": "353", "DE": "49", "FR": "33", "NL": "31", "BE": "32", "ES": "34",
        "IT": "39", "SE": "46", "DK": "45", "PL": "48"}
MOBILE = {"GB": "7700 900ddd", "IE": "8d ddd dddd", "DE": "1dd dddddddd", "FR": "6 dd dd dd dd",
          "NL": "6 dddddddd", "BE": "4dd dd dd dd", "ES": "6dd ddd ddd", "IT": "3dd ddd dddd",
          "SE": "70 ddd dd dd", "DK": "dd dd dd dd", "PL": "5dd ddd ddd"}
UK_REGIONS = ["Scotland", "Northern", "Midlands", "South West", "Wales", "Northern Ireland", "North East"]

# (male first names, female first names, surnames)
NAMES = {
    "GB": (
        ["James", "Oliver", "Harry", "George", "Jack", "Thomas", "William", "Daniel", "Matthew", "Andrew",
         "David", "Richard", "Mark", "Paul", "Stephen", "Christopher", "Michael", "Robert", "Peter", "Simon",
         "Ian", "Gareth", "Rhys", "Callum", "Euan", "Alistair", "Hamish", "Rajesh", "Arjun", "Mohammed",
         "Imran", "Samuel", "Benjamin", "Joseph", "Luke", "Adam", "Ryan", "Craig", "Neil", "Graham",
         "Stuart", "Nathan", "Dylan", "Owen", "Kwame"],
        ["Sarah", "Emma", "Charlotte", "Sophie", "Emily", "Hannah", "Laura", "Rebecca", "Rachel", "Claire",
         "Helen", "Joanne", "Nicola", "Victoria", "Amy", "Jessica", "Lucy", "Katie", "Gemma", "Fiona",
         "Eilidh", "Morag", "Siân", "Catrin", "Priya", "Aisha", "Fatima", "Olivia", "Amelia", "Isla",
         "Grace", "Chloe", "Megan", "Zoë", "Harriet", "Eleanor", "Jennifer", "Alison", "Deborah", "Karen",
         "Bethan", "Ngozi"],
        ["Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Robinson", "Wright",
         "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Wood", "Jackson", "Clarke",
         "Patel", "Khan", "Lewis", "James", "Phillips", "Mason", "Mitchell", "Rose", "Cox", "Morgan",
         "Hughes", "Edwards", "Hill", "Moore", "Harrison", "Scott", "Young", "Morris", "Ward", "Turner",
         "Carter", "Cooper", "Baker", "Harris", "Martin", "King", "Allen", "Shaw", "Chapman", "Fletcher",
         "Hartley", "Pemberton", "Ashworth", "Whitfield", "Cartwright", "Fairbairn", "MacDonald", "McKenzie",
         "Campbell", "Stewart", "Fraser", "Murray", "Reid", "Ross", "Sinclair", "Llewellyn", "Pritchard",
         "Vaughan", "Bevan", "Hughes-Jones", "Singh", "Ahmed", "Chaudhry", "Okafor", "Mensah", "O'Neill",
         "Finch", "Holloway", "Barraclough", "Greenwood", "Ainsworth", "Kaur", "Begum", "Lowe", "Nash"],
    ),
    "IE": (
        ["Seán", "Ciarán", "Conor", "Cian", "Darragh", "Eoin", "Pádraig", "Declan", "Fergal", "Liam",
         "Niall", "Colm"],
        ["Niamh", "Aoife", "Siobhán", "Sinéad", "Orla", "Róisín", "Ciara", "Aisling", "Gráinne", "Clodagh"],
        ["Murphy", "Kelly", "O'Sullivan", "Walsh", "O'Brien", "Byrne", "Ryan", "O'Connor", "O'Neill", "Doyle",
         "McCarthy", "Gallagher", "Lynch", "Kennedy", "Quinn", "Fitzgerald", "Brennan", "Ní Bhriain"],
    ),
    "DE": (
        ["Lukas", "Maximilian", "Jonas", "Felix", "Tobias", "Stefan", "Andreas", "Jürgen", "Matthias",
         "Florian", "Markus", "Klaus"],
        ["Anna", "Lena", "Katharina", "Julia", "Sabine", "Claudia", "Stefanie", "Jana", "Sophie", "Birgit",
         "Ute", "Franziska"],
        ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz",
         "Hoffmann", "Koch", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Schwarz", "Zimmermann",
         "Braun", "Krüger", "Hartmann", "Lange", "Weiß", "Vogel", "Köhler"],
    ),
    "FR": (
        ["Louis", "Hugo", "Lucas", "Thomas", "Nicolas", "Julien", "Mathieu", "Pierre", "François",
         "Sébastien", "Antoine", "Jérôme"],
        ["Camille", "Léa", "Manon", "Chloé", "Julie", "Sophie", "Élodie", "Amélie", "Margaux", "Hélène",
         "Céline", "Aurélie"],
        ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau",
         "Simon", "Laurent", "Lefebvre", "Michel", "Garcia", "Bertrand", "Roux", "Vincent", "Fournier",
         "Girard", "Bonnet", "Lambert", "Fontaine", "Rousseau", "Mercier", "Guérin", "Faure", "Chevalier"],
    ),
    "NL": (
        ["Daan", "Sem", "Lars", "Bram", "Thijs", "Jeroen", "Maarten", "Pieter", "Ruben", "Joost"],
        ["Sanne", "Femke", "Lotte", "Anouk", "Eva", "Iris", "Marieke", "Esther", "Noor", "Inge"],
        ["de Jong", "Jansen", "de Vries", "van den Berg", "van Dijk", "Bakker", "Janssen", "Visser", "Smit",
         "Meijer", "de Boer", "Mulder", "de Groot", "Bos", "Vos", "Peters", "Hendriks", "van Leeuwen",
         "Dekker", "Brouwer"],
    ),
    "BE": (
        ["Lucas", "Arthur", "Wout", "Pieter", "Thomas", "Maxime", "Jens", "Olivier", "Koen", "Benoît"],
        ["Emma", "Louise", "Marie", "Lore", "Fien", "Elise", "Charlotte", "Nathalie", "An", "Sofie"],
        ["Peeters", "Janssens", "Maes", "Jacobs", "Mertens", "Willems", "Claes", "Goossens", "Wouters",
         "De Smet", "Dubois", "Lambert", "Dupont", "Vermeulen", "Van Damme"],
    ),
    "ES": (
        ["Alejandro", "Javier", "Carlos", "Pablo", "Sergio", "Álvaro", "Jorge", "David", "Miguel", "Raúl"],
        ["Lucía", "María", "Carmen", "Laura", "Marta", "Paula", "Elena", "Sofía", "Cristina", "Nuria"],
        ["García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez", "Pérez", "Gómez",
         "Martín", "Jiménez", "Ruiz", "Hernández", "Díaz", "Moreno", "Muñoz", "Álvarez", "Romero"],
    ),
    "IT": (
        ["Marco", "Luca", "Alessandro", "Matteo", "Giuseppe", "Francesco", "Andrea", "Davide", "Lorenzo",
         "Niccolò"],
        ["Giulia", "Francesca", "Chiara", "Sara", "Valentina", "Federica", "Elena", "Martina", "Alessia",
         "Ilaria"],
        ["Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci", "Marino", "Greco",
         "Bruno", "Gallo", "Conti", "De Luca", "Mancini", "Costa", "Giordano", "Rizzo", "Lombardi", "Moretti"],
    ),
    "SE": (
        ["Erik", "Lars", "Anders", "Johan", "Karl", "Per", "Magnus", "Oskar", "Björn", "Henrik"],
        ["Emma", "Maja", "Elin", "Sara", "Karin", "Anna", "Linnéa", "Ingrid", "Åsa", "Frida"],
        ["Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Olsson", "Persson",
         "Svensson", "Gustafsson", "Pettersson", "Lindqvist", "Lindström", "Bergström", "Sjöberg", "Åberg"],
    ),
    "DK": (
        ["Mads", "Rasmus", "Søren", "Jens", "Mikkel", "Anders", "Frederik", "Kasper", "Niels", "Jesper"],
        ["Mette", "Camilla", "Louise", "Sofie", "Ida", "Freja", "Maja", "Line", "Signe", "Birthe"],
        ["Nielsen", "Jensen", "Hansen", "Pedersen", "Andersen", "Christensen", "Larsen", "Sørensen",
         "Rasmussen", "Jørgensen", "Petersen", "Madsen", "Kristensen", "Olsen", "Thomsen", "Møller"],
    ),
    "PL": (
        ["Piotr", "Krzysztof", "Tomasz", "Paweł", "Michał", "Marcin", "Łukasz", "Jakub", "Grzegorz", "Adam"],
        ["Anna", "Katarzyna", "Magdalena", "Agnieszka", "Joanna", "Monika", "Małgorzata", "Aleksandra",
         "Ewa", "Zofia"],
        ["Nowak", "Kowalski", "Wiśniewski", "Wójcik", "Kowalczyk", "Kamiński", "Lewandowski", "Zieliński",
         "Szymański", "Woźniak", "Dąbrowski", "Kozłowski", "Mazur", "Krawczyk", "Nowicki"],
    ),
}

NOTES_POOL = [
    "Key account, reviewed quarterly",
    "Prefers invoices by post, not email",
    'Requested "net 60" payment terms',
    "Migrated from Sage 200, legacy ref {ref}",
    "Do not call before 10am, per FD",
    'Contact says "send everything to the {city} office"',
    "VAT exempt; certificate on file",
    "Credit limit raised to £{limit},000 in {year}",
    "Part of framework agreement FA-{year}-{mm}",
    "Possible duplicate, check with sales ops",
    'Formerly trading as "{old}"',
    "Purchase orders required for all orders over £{limit},000",
    "Tender due {dd}/{mm}/{year2}, bid/no-bid pending",
    "Account manager changed in {year}",
    'Uses the "Gold" support tier, renewal in March',
    "Invoices to AP mailbox only",
    "Signed NDA on file",
    "Slow payer, chase at 30 days",
]

JOB_TITLES = [
    ("Managing Director", 5), ("Finance Director", 6), ("Chief Executive Officer", 3),
    ("Operations Manager", 8), ("Procurement Manager", 7), ("Office Manager", 7), ("Head of IT", 5),
    ("Sales Director", 4), ("Accounts Payable Clerk", 5), ("HR Business Partner", 4),
    ("Marketing Manager", 6), ("Purchasing Assistant", 4), ("Company Secretary", 2),
    ("Director of Operations", 3), ("Senior Buyer", 5), ("Facilities Manager", 5),
    ("Credit Controller", 4), ("Partner", 3), ("Associate", 3), ("Logistics Coordinator", 4),
    ("Head of Procurement, EMEA", 2), ("IT Support Analyst", 3), ("Financial Controller", 4),
    ("Customer Service Team Leader", 3), ("Project Manager", 5), ("Executive Assistant", 4),
    ("", 6), ("Director; Company Secretary", 1),
]

INTERESTS = ["Sports", "Music", "Travel", "Cooking", "Technology", "Reading"]

LEAD_SOURCES = ["Advertisement", "Employee Referral", "External Referral", "Partner", "Public Relations",
                "Seminar", "Trade Show", "Web", "Word of Mouth", "Other"]
LEAD_SOURCE_WEIGHTS = [8, 5, 7, 8, 4, 6, 10, 35, 8, 9]
RATINGS = ["Hot", "Warm", "Cold"]
RATING_WEIGHTS = [20, 45, 35]

LEAD_TOPICS = [
    "Enquiry about managed print services",
    "Quote request: {n} office chairs",
    "Fleet telematics for {n} vans",
    "Annual maintenance contract renewal",
    "Website redesign proposal",
    "Cloud backup for {n} users",
    "Warehouse racking – {n} bays",
    "Energy audit for head office",
    "Training course for {n} staff",
    "Demo request – CRM integration",
    "Pricing for bulk order ({n} units)",
    "Replacement HVAC units at {city} site",
    "Catering contract for {city} office",
    "Follow-up from Business Show {year}",
    "Partnership enquiry",
    "Request for callback",
    "Tender: facilities management {year}/{year1}",
    "Upgrade from Standard to Premium licence",
    "Consultation on GDPR compliance",
    "Payroll outsourcing for {n} employees",
    "Office relocation – fit-out and furniture",
    "Insurance renewal, \"all risks\" cover",
]
LEAD_COMMENTS = [
    "Please call after 2pm.",
    "Asked for a call back on Tuesday morning.",
    'Mentioned they are "unhappy with current supplier".',
    "Budget approved for Q2; decision by end of month.",
    "Met at stand B42.\nFollow up with brochure.",
    "Ich bitte um Rückruf.",
    "Merci de me recontacter après 14h.",
    "Referred by a colleague at {company}.",
    "Needs VAT-inclusive pricing.",
    "Looking to switch before contract ends in {month}.",
    "Can you send a case study?",
    "Currently with a competitor, contract ends {month}.",
    "Requested pricing in EUR.",
    "Submitted twice by mistake, ignore the earlier form.",
    "Urgent – site closes for refurbishment soon.",
    "Prefers email, no phone calls please.",
]
PERSONAL_DOMAINS = ["gmail.com", "outlook.com", "hotmail.co.uk", "yahoo.co.uk", "btinternet.com", "icloud.com"]

# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

_TRANSLIT = {"ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "ł": "l", "Ł": "L", "ß": "ss", "đ": "d",
             "ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"}


def ascii_fold(s: str, german: bool = False) -> str:
    out = []
    for ch in s:
        if ch in "äöüÄÖÜ" and not german:
            out.append(ch)
        elif ch in _TRANSLIT:
            out.append(_TRANSLIT[ch])
        else:
            out.append(ch)
    s = "".join(out)
    s = unicodedata.normalize("NFKD", s)
    return "".join(ch for ch in s if ord(ch) < 128 and not unicodedata.combining(ch))


def email_part(s: str, german: bool) -> str:
    s = ascii_fold(s, german).lower()
    return "".join(ch for ch in s if ch.isalnum() or ch == "-")


def fill_digits(rng: random.Random, pattern: str) -> str:
    return "".join(str(rng.randrange(10)) if ch == "d" else ch for ch in pattern)


def landline(rng: random.Random, cc: str, pattern: str) -> str:
    local = fill_digits(rng, pattern)
    if cc == "GB":
        style = rng.random()
        if style < 0.45:
            return "0" + local
        if style < 0.85:
            return "+44 " + local
        return "+44 (0)" + local
    return f"+{DIAL[cc]} {local}"


def mobile(rng: random.Random, cc: str) -> str:
    local = fill_digits(rng, MOBILE[cc])
    if cc == "DE" and local[1] not in "567":
        local = local[0] + rng.choice("567") + local[2:]
    if cc == "GB":
        style = rng.random()
        if style < 0.5:
            return "0" + local
        if style < 0.8:
            return "+44 " + local
        if style < 0.9:
            return "+44 (0)" + local
        return "0" + local.replace(" ", "")
    return f"+{DIAL[cc]} {local}"


def weighted(rng: random.Random, items, weights):
    return rng.choices(items, weights=weights, k=1)[0]


def random_date(rng: random.Random, start: date, end: date) -> date:
    return start + timedelta(days=rng.randrange((end - start).days + 1))


def last_sunday(year: int, month: int) -> date:
    d = date(year, month, calendar.monthrange(year, month)[1])
    return d - timedelta(days=(d.weekday() - 6) % 7)


def summer_time(utc: datetime) -> bool:
    """EU/UK rule: summer time from 01:00 UTC on the last Sunday of March
    until 01:00 UTC on the last Sunday of October."""
    start = datetime.combine(last_sunday(utc.year, 3), datetime.min.time()) + timedelta(hours=1)
    end = datetime.combine(last_sunday(utc.year, 10), datetime.min.time()) + timedelta(hours=1)
    return start <= utc < end


def utc_offset_hours(local: datetime, tz_std: int) -> int:
    """Offset for a local wall time.  Only valid away from the 01:00-03:00
    changeover hours, which the generator never produces."""
    assert 5 <= local.hour <= 23, local
    utc = local - timedelta(hours=tz_std)
    return tz_std + (1 if summer_time(utc) else 0)


def money(pence: int) -> str:
    return f"{pence // 100:,}.{pence % 100:02d}"


# --------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------

def person_name(rng: random.Random, cc: str):
    males, females, surnames = NAMES[cc]
    female = rng.random() < 0.5
    first = rng.choice(females if female else males)
    last = rng.choice(surnames)
    if cc == "PL" and female:
        if last.endswith("ski"):
            last = last[:-3] + "ska"
        elif last.endswith("cki"):
            last = last[:-3] + "cka"
    return first, last, female


class CompanyNamer:
    def __init__(self, rng: random.Random):
        self.rng = rng
        self.names: set[str] = set()
        self.domains: set[str] = set()

    def trade(self, cc: str, industry: str) -> str:
        lang = COUNTRIES[cc]["lang"]
        if lang in TRADE_LOCAL and self.rng.random() < 0.55:
            return self.rng.choice(TRADE_LOCAL[lang][industry])
        return self.rng.choice(TRADE_EN[industry])

    def surname(self, cc: str) -> str:
        return self.rng.choice(NAMES[cc][2])

    def base_name(self, cc: str, industry: str):
        """Returns (base, suffix).  base has no legal-form suffix."""
        rng = self.rng
        c = COUNTRIES[cc]
        suffix = rng.choice(c["suffixes"])
        professional = industry in ("Legal Services", "Accounting", "Consulting")
        r = rng.random()
        if professional and r < 0.45:
            a, b = self.surname(cc), self.surname(cc)
            while b == a:
                b = self.surname(cc)
            if rng.random() < 0.2:
                third = self.surname(cc)
                base = f"{a}, {b} & {third}" if third not in (a, b) else f"{a} & {b}"
            else:
                base = f"{a} & {b}"
            return base, c["partnership"] if rng.random() < 0.7 else suffix
        if r < 0.35:
            base = f"{self.surname(cc)} {self.trade(cc, industry)}"
        elif r < 0.55 and cc in ("GB", "IE"):
            base = f"{rng.choice(PLACE_WORDS)} {self.trade(cc, industry)}"
            if rng.random() < 0.1:
                base = f"The {base} Company"
        elif r < 0.55:
            city = rng.choice(CITIES[cc])[0]
            base = f"{city} {self.trade(cc, industry)}"
        elif r < 0.8:
            base = f"{rng.choice(BRAND_WORDS)} {rng.choice(TRADE_EN[industry])}"
        elif r < 0.9:
            a, b = self.surname(cc), self.surname(cc)
            base = f"{a} & {b}" if a != b else f"{a} Brothers"
        else:
            base = f"{self.surname(cc)} & Sons" if c["lang"] == "en" else f"{self.surname(cc)} {self.trade(cc, industry)}"
            if base.endswith("& Sons") and rng.random() < 0.3:
                base = base.replace("& Sons", "& Daughters")
        return base, suffix

    def slug(self, base: str, cc: str) -> str:
        base = base.replace("& Sons", "Andsons").replace("& Daughters", "Anddaughters")
        words = [email_part(w, cc == "DE") for w in base.replace("&", " ").replace(",", " ").split()]
        words = [w.replace("-", "") for w in words if w and w not in ("the", "and", "company", "of")]
        joined = "".join(words)
        hyphened = "-".join(words).replace("-andsons", "andsons").replace("-anddaughters", "anddaughters")
        if len(joined) <= 18:
            return joined if self.rng.random() < 0.8 or len(words) == 1 else hyphened
        if len(words) == 2:  # e.g. greenfield-accountancy
            return hyphened if len(joined) <= 24 else words[0]
        return words[0] + "".join(w[0] for w in words[1:])  # e.g. quaysidefm

    def claim(self, name: str) -> bool:
        if name.lower() in self.names:
            return False
        self.names.add(name.lower())
        return True

    def claim_domain(self, slug: str, cc: str, extra: str = "") -> str:
        rng = self.rng
        tld = rng.choice(COUNTRIES[cc]["tlds"])
        candidates = [slug + tld]
        if extra:
            candidates.append(f"{slug}-{extra}{tld}")
        candidates += [f"{slug}-{cc.lower()}{tld}", f"{slug}group{tld}", f"{slug}-ltd{tld}"]
        candidates += [f"{slug}{n}{tld}" for n in range(2, 50)]
        for d in candidates:
            if d not in self.domains:
                self.domains.add(d)
                return d
        raise RuntimeError("domain space exhausted")

    def new_company(self, cc: str, industry: str):
        for _ in range(200):
            base, suffix = self.base_name(cc, industry)
            name = f"{base} {suffix}"
            if self.claim(name):
                slug = self.slug(base, cc)
                return name, base, self.claim_domain(slug, cc)
        raise RuntimeError("could not find a unique company name")


# --------------------------------------------------------------------------
# accounts.csv
# --------------------------------------------------------------------------

ACCOUNT_HEADER = ["Account No", "Company", "Parent No", "Industry", "Revenue", "Employees", "Phone",
                  "Email", "Website", "City", "Country", "Customer Since", "Credit Hold", "Notes"]


def build_accounts(rng: random.Random, namer: CompanyNamer):
    accounts = []
    for i in range(1, N_ACCOUNTS + 1):
        bad = i in ACC_BAD_ROWS
        acc = {"no": f"ACC-{i:05d}", "row": i, "bad": bad}
        cc = weighted(rng, COUNTRY_CODES, COUNTRY_WEIGHTS)
        parent = None
        if i > CHILDREN_AFTER_ROW and i != ACC_LONG_NAME and rng.random() < 0.30:
            parent = accounts[rng.randrange(N_PARENTS)]
        industry = weighted(rng, INDUSTRIES, INDUSTRY_WEIGHTS)
        if parent and rng.random() < 0.7:
            industry = parent["industry"]
        if i == ACC_BAD_INDUSTRY:
            cc, industry = "GB", "Aerospace"
        if i == ACC_LONG_NAME:
            cc, industry = "GB", "Agriculture"

        # name + domain
        if i == ACC_BAD_INDUSTRY:
            base = f"{namer.surname('GB')} Aerospace Components"
            name = base + " Ltd"
            namer.claim(name)
            domain = namer.claim_domain(namer.slug(base, cc), cc)
        elif i == ACC_LONG_NAME:
            name = ("Northern Counties Agricultural Co-operative Society for the Promotion of Sustainable "
                    "Dairy, Arable and Livestock Farming in Cumbria, Northumberland and County Durham Ltd")
            namer.claim(name)
            domain = namer.claim_domain("ncacs", cc)
        elif parent and rng.random() < 0.5:
            pbase, pcc = parent["base"], parent["cc"]
            if cc == pcc:
                region = rng.choice(UK_REGIONS) if cc == "GB" else rng.choice(CITIES[cc])[0]
                name = f"{pbase} ({region}) {rng.choice(COUNTRIES[cc]['suffixes'])}"
                extra = email_part(region, cc == "DE").replace("-", "")
            else:
                name = f"{pbase} {COUNTRIES[cc]['local_name']} {rng.choice(COUNTRIES[cc]['suffixes'])}"
                extra = cc.lower()
            if namer.claim(name):
                domain = namer.claim_domain(parent["slug"], cc, extra)
            else:
                name, pbase, domain = namer.new_company(cc, industry)
        else:
            name, _, domain = namer.new_company(cc, industry)
        base = name
        for s in sorted({s for c in COUNTRIES.values() for s in c["suffixes"] + [c["partnership"]]},
                        key=len, reverse=True):
            if name.endswith(" " + s):
                base = name[: -len(s) - 1]
                break
        acc.update(cc=cc, industry=industry, name=name, base=base, domain=domain,
                   slug=domain.split(".")[0], parent=parent)

        city, pattern, _ = weighted(rng, CITIES[cc], [c[2] for c in CITIES[cc]])
        if i == ACC_LONG_NAME:
            city, pattern = "Newcastle upon Tyne", "191 498 0ddd"
        lo, hi = (math.log(40), math.log(25000)) if i <= N_PARENTS else (math.log(2), math.log(5000))
        employees = max(1, int(math.exp(rng.uniform(lo, hi))))
        if i == ACC_BAD_EMPLOYEES:
            employees = 12
        revenue_pence = int(employees * rng.uniform(45_000, 260_000) * 100)
        if rng.random() < 0.6:
            revenue_pence = round(revenue_pence, -5)  # whole thousands
        revenue = money(revenue_pence) if bad or rng.random() > 0.08 else ""
        emp_text = str(employees) if bad or rng.random() > 0.04 else "n/a"
        if i == ACC_BAD_EMPLOYEES:
            emp_text = "twelve"

        phone = landline(rng, cc, pattern) if rng.random() < 0.92 else ""
        email = f"{rng.choice(COUNTRIES[cc]['email_prefixes'])}@{domain}" if rng.random() < 0.85 else ""
        w = rng.random()
        if w < 0.6:
            website = f"www.{domain}"
        elif w < 0.8:
            website = f"https://www.{domain}"
        elif w < 0.88:
            website = f"http://{domain}"
        else:
            website = ""

        since = random_date(rng, date(1998, 1, 5), date(2025, 10, 31))
        since_text = since.strftime("%d/%m/%Y")
        if i == ACC_BAD_DATE:
            since_text = "31/02/2019"

        hold = weighted(rng, ["No", "Yes", "N", "Y", "yes"], [75, 12, 6, 3, 4])
        industry_text = industry
        r = rng.random()
        if r < 0.04:
            industry_text = ""
        elif r < 0.06:
            variant = rng.choice([str.lower, str.upper, str.capitalize])(industry)
            industry_text = variant if variant != industry else industry.lower()

        n = rng.random()
        notes = ""
        if n < 0.18:
            notes = rng.choice(NOTES_POOL).format(
                ref=f"{rng.randrange(10000, 99999)}", city=rng.choice(CITIES[cc])[0],
                limit=rng.choice([10, 25, 50, 75, 100, 250]), year=rng.randrange(2015, 2025),
                year2=2025, mm=f"{rng.randrange(1, 13):02d}", dd=f"{rng.randrange(1, 29):02d}",
                old=f"{namer.surname(cc)} {rng.choice(TRADE_EN[industry if industry in TRADE_EN else 'Wholesale'])}")
        if i in ACC_MULTILINE_NOTES:
            notes = ACC_MULTILINE_NOTES[i]

        if bad:  # exactly one defect per bad row: everything else canonical
            notes = ""
            hold = "No"
            if i != ACC_BAD_INDUSTRY:
                industry_text = industry

        acc["employees"] = employees
        acc["fields"] = [acc["no"], name, parent["no"] if parent else "", industry_text, revenue, emp_text,
                         phone, email, website, city, COUNTRIES[cc]["name"], since_text, hold, notes]
        if i == ACC_RAGGED:
            acc["fields"] = acc["fields"][:-1]
        accounts.append(acc)
    return accounts


def write_accounts(accounts, path: Path):
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
        w.writerow(ACCOUNT_HEADER)
        for a in accounts:
            w.writerow(a["fields"])


# --------------------------------------------------------------------------
# contacts.csv
# --------------------------------------------------------------------------

CONTACT_HEADER = ["Email", "First Name", "Last Name", "Account No", "Job Title", "Phone", "Birth Date",
                  "Gender", "Preferred Contact", "Interests", "Do Not Email", "Last Campaign"]


def campaign_calendar(rng: random.Random):
    """Marketing sends, as Europe/London wall-clock times (all between 07:00 and 18:00)."""
    times = ["08:30", "09:00", "09:15", "10:00", "10:30", "11:00", "14:00", "15:30", "16:45"]
    sends = []
    for year in (2024, 2025):
        for month in range(1, 13):
            if year == 2025 and month > 11:
                break
            d = date(year, month, 8)
            d += timedelta(days=(1 - d.weekday()) % 7)  # second Tuesday
            sends.append(f"{d:%d/%m/%Y} {rng.choice(times)}")
    # extra sends, including the two 2025 changeover Sundays
    sends += ["30/03/2025 11:00", "26/10/2025 09:30", "31/03/2024 10:00", "27/10/2024 12:00",
              "28/11/2025 07:45", "21/06/2024 17:15", "15/01/2025 13:05"]
    return sends


def build_contacts(rng: random.Random, accounts, namer: CompanyNamer):
    valid = [a for a in accounts if not a["bad"]]
    weights = [math.log(a["employees"] + 3) for a in valid]
    campaigns = campaign_calendar(rng)
    used_emails: set[str] = set()
    rows = []
    for i in range(1, N_CONTACTS + 1):
        bad = i in CON_BAD_ROWS
        if i == CON_BAD_ACCOUNT:
            acc, cc = None, "GB"
            name, base, domain = namer.new_company(cc, "Consulting")
            account_no = "ACC-99999"
        elif rng.random() < 0.07 and not bad:
            acc = None
            cc = weighted(rng, COUNTRY_CODES, COUNTRY_WEIGHTS)
            _, _, domain = namer.new_company(cc, weighted(rng, INDUSTRIES, INDUSTRY_WEIGHTS))
            account_no = ""
        else:
            acc = rng.choices(valid, weights=weights, k=1)[0]
            cc, domain, account_no = acc["cc"], acc["domain"], acc["no"]

        # mostly local staff, some expats
        name_cc = cc if rng.random() < 0.85 else weighted(rng, COUNTRY_CODES, COUNTRY_WEIGHTS)
        first, last, female = person_name(rng, name_cc)
        fe, le = email_part(first, name_cc == "DE"), email_part(last, name_cc == "DE")
        style = rng.random()
        if style < 0.7:
            local = f"{fe}.{le}"
        elif style < 0.85:
            local = f"{fe[0]}.{le}"
        elif style < 0.95:
            local = f"{fe[0]}{le}"
        else:
            local = f"{fe}{le[0]}"
        candidates = [f"{local}@{domain}", f"{fe}.{le}@{domain}", f"{fe[0]}.{le}@{domain}",
                      f"{fe}.{le[0]}@{domain}"] + [f"{fe}.{le}{n}@{domain}" for n in range(2, 100)]
        email = next(c for c in candidates if c not in used_emails)
        used_emails.add(email)

        title = weighted(rng, [t for t, _ in JOB_TITLES], [w for _, w in JOB_TITLES])
        p = rng.random()
        phone = mobile(rng, cc) if p < 0.7 else (landline(rng, cc, rng.choice(CITIES[cc])[1]) if p < 0.88 else "")
        birth = ""
        if rng.random() < 0.78:
            birth = random_date(rng, date(1958, 1, 1), date(2003, 12, 31)).isoformat()
        g = rng.random()
        gender = "" if g < 0.1 else ("Female" if female else "Male")
        preferred = weighted(rng, ["Any", "Email", "Phone", "Mail", "Fax"], [40, 30, 20, 7, 3])
        k = weighted(rng, [0, 1, 2, 3], [30, 35, 25, 10])
        interests = rng.sample(INTERESTS, k)
        dne = "true" if rng.random() < 0.12 else "false"
        last_campaign = rng.choice(campaigns) if rng.random() < 0.75 else ""

        if bad:  # one defect only; keep the rest canonical and present
            if not birth:
                birth = random_date(rng, date(1965, 1, 1), date(1995, 12, 31)).isoformat()
            if not interests:
                interests = ["Travel"]
            if title == "Director; Company Secretary":
                title = "Operations Manager"
        if i == CON_BAD_BIRTH:
            birth = "1990-02-30"
        if i == CON_BAD_INTEREST:
            interests = ["Music", "Knitting"]
        if i == CON_BAD_PREFERRED:
            preferred = "Pigeon"

        rows.append([email, first, last, account_no, title, phone, birth, gender, preferred,
                     "|".join(interests), dne, last_campaign])
    return rows


def write_contacts(rows, path: Path):
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f, delimiter=";", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        w.writerow(CONTACT_HEADER)
        w.writerows(rows)


# --------------------------------------------------------------------------
# leads.jsonl
# --------------------------------------------------------------------------

def build_leads(rng: random.Random, accounts, namer: CompanyNamer):
    lines = []
    start = date(2025, 10, 1)
    end = date(2026, 4, 30)
    months = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
              "October", "November", "December"]
    for i in range(1, N_LEADS + 1):
        cc = weighted(rng, COUNTRY_CODES, COUNTRY_WEIGHTS)
        if rng.random() < 0.1:
            acc = rng.choice([a for a in accounts if not a["bad"] and a["cc"] == cc] or
                             [a for a in accounts if not a["bad"]])
            company, domain, cc = acc["name"], acc["domain"], acc["cc"]
        else:
            company, _, domain = namer.new_company(cc, weighted(rng, INDUSTRIES, INDUSTRY_WEIGHTS))
        first, last, _ = person_name(rng, cc)
        fe, le = email_part(first, cc == "DE"), email_part(last, cc == "DE")
        if rng.random() < 0.72:
            email = f"{fe}.{le}@{domain}"
        else:
            email = f"{fe}{rng.choice(['', '.', '_'])}{le}{rng.choice(['', '', str(rng.randrange(1, 99))])}" \
                    f"@{rng.choice(PERSONAL_DOMAINS)}"

        topic = rng.choice(LEAD_TOPICS).format(
            n=rng.choice([5, 10, 12, 20, 25, 40, 50, 75, 100, 150, 250]),
            city=rng.choice(CITIES[cc])[0], year=2026, year1=27)
        d = random_date(rng, start, end)
        hour = weighted(rng, list(range(7, 24)),
                        [2, 5, 8, 9, 9, 7, 6, 8, 8, 7, 6, 4, 3, 3, 3, 2, 1])
        local = datetime(d.year, d.month, d.day, hour, rng.randrange(60), rng.randrange(60))
        off = utc_offset_hours(local, COUNTRIES[cc]["tz_std"])
        received = f"{local:%Y-%m-%dT%H:%M:%S}+{off:02d}:00"

        obj = {"id": f"L-{i:06d}", "topic": topic,
               "person": {"first": first, "last": last, "email": email},
               "company": company,
               "source": weighted(rng, LEAD_SOURCES, LEAD_SOURCE_WEIGHTS),
               "rating": weighted(rng, RATINGS, RATING_WEIGHTS)}
        v = rng.random()
        if v < 0.70:
            pence = rng.randrange(1_500, 250_000) * rng.choice([100, 100, 100, 50, 25, 1])
            obj["estimated_value"] = pence // 100 if pence % 100 == 0 else pence / 100
        elif v < 0.85:
            obj["estimated_value"] = None
        obj["received"] = received
        if rng.random() < 0.65:
            obj["comments"] = rng.choice(LEAD_COMMENTS).format(
                company=f"{namer.surname(cc)} {rng.choice(COUNTRIES[cc]['suffixes'])}",
                month=rng.choice(months))

        if i == LEAD_BAD_VALUE:
            obj = {**{k: obj[k] for k in ("id", "topic", "person", "company", "source", "rating")},
                   "estimated_value": "lots", "received": obj["received"],
                   **({"comments": obj["comments"]} if "comments" in obj else {})}
        if i == LEAD_BAD_RATING:
            obj["rating"] = "Lukewarm"
        if i == LEAD_EMPTY_TOPIC:
            obj["topic"] = ""
        line = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
        if i == LEAD_MALFORMED:
            assert line.endswith("}")
            line = line[:-1]
        lines.append(line)
    return lines


def write_leads(lines, path: Path):
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("\n".join(lines) + "\n")


# --------------------------------------------------------------------------
# Self-check: re-read the files and confirm every documented fact
# --------------------------------------------------------------------------

def check(accounts_path: Path, contacts_path: Path, leads_path: Path):
    raw = accounts_path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    with open(accounts_path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        assert header == ACCOUNT_HEADER
        rows, start_lines, prev = [], [], reader.line_num
        for rec in reader:
            start_lines.append(prev + 1)
            prev = reader.line_num
            rows.append(rec)
    assert len(rows) == N_ACCOUNTS, len(rows)
    acc_report = {}
    for i, rec in enumerate(rows, 1):
        ln = start_lines[i - 1]
        if i == ACC_RAGGED:
            assert len(rec) == 13, rec
        else:
            assert len(rec) == 14, (i, rec)
        if "\n" in (rec[13] if len(rec) == 14 else ""):
            acc_report.setdefault("multiline", []).append((i, ln, rec[13].count("\n")))
        if i in ACC_BAD_ROWS:
            acc_report.setdefault("bad", []).append((i, ln))
    assert rows[ACC_BAD_INDUSTRY - 1][3] == "Aerospace"
    assert rows[ACC_BAD_DATE - 1][11] == "31/02/2019"
    assert rows[ACC_BAD_EMPLOYEES - 1][5] == "twelve"
    assert len(rows[ACC_LONG_NAME - 1][1]) > 160
    nos = [r[0] for r in rows]
    assert len(set(nos)) == N_ACCOUNTS
    parents = set(nos[:N_PARENTS])
    for i, r in enumerate(rows, 1):
        if i <= CHILDREN_AFTER_ROW:
            assert r[2] == "", i
        elif r[2]:
            assert r[2] in parents, i
    # industry labels
    labels = {s.lower() for s in INDUSTRIES}
    for i, r in enumerate(rows, 1):
        if r[3] and i != ACC_BAD_INDUSTRY:
            assert r[3].lower() in labels, (i, r[3])
        if i != ACC_BAD_DATE:
            datetime.strptime(r[11], "%d/%m/%Y")
        if i != ACC_BAD_EMPLOYEES:
            assert r[5] == "n/a" or r[5].isdigit(), (i, r[5])
        if i != ACC_LONG_NAME:
            assert len(r[1]) <= 160
    assert raw.count(b"\r\n") == N_ACCOUNTS + 1
    physical = raw.count(b"\n")

    raw = contacts_path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r" not in raw
    with open(contacts_path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter=";")
        assert next(reader) == CONTACT_HEADER
        crow = list(reader)
    assert len(crow) == N_CONTACTS and all(len(r) == 12 for r in crow)
    assert raw.count(b"\n") == N_CONTACTS + 1  # no embedded newlines
    emails = [r[0] for r in crow]
    assert len(set(emails)) == N_CONTACTS and all(e == e.lower() for e in emails)
    good_accounts = {r[0] for i, r in enumerate(rows, 1) if i not in ACC_BAD_ROWS}
    for i, r in enumerate(crow, 1):
        if i == CON_BAD_ACCOUNT:
            assert r[3] == "ACC-99999"
        else:
            assert r[3] == "" or r[3] in good_accounts, (i, r[3])
        if i != CON_BAD_BIRTH and r[6]:
            date.fromisoformat(r[6])
        if i != CON_BAD_INTEREST and r[9]:
            assert all(x in INTERESTS for x in r[9].split("|")), (i, r[9])
        if i != CON_BAD_PREFERRED:
            assert r[8] in ("Any", "Email", "Phone", "Fax", "Mail"), (i, r[8])
        assert r[7] in ("Male", "Female", "")
        assert r[10] in ("true", "false")
        if r[11]:
            datetime.strptime(r[11], "%d/%m/%Y %H:%M")
    assert crow[CON_BAD_BIRTH - 1][6] == "1990-02-30"
    assert "Knitting" in crow[CON_BAD_INTEREST - 1][9].split("|")
    assert crow[CON_BAD_PREFERRED - 1][8] == "Pigeon"

    lines = leads_path.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "" and len(lines) == N_LEADS + 1
    bad_json = []
    for n, line in enumerate(lines[:-1], 1):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            bad_json.append(n)
            continue
        assert obj["id"] == f"L-{n:06d}"
        datetime.fromisoformat(obj["received"])
        if n == LEAD_BAD_VALUE:
            assert obj["estimated_value"] == "lots"
        elif "estimated_value" in obj:
            assert obj["estimated_value"] is None or isinstance(obj["estimated_value"], (int, float))
        if n == LEAD_BAD_RATING:
            assert obj["rating"] == "Lukewarm"
        else:
            assert obj["rating"] in RATINGS
        assert obj["source"] in LEAD_SOURCES
        assert (obj["topic"] == "") == (n == LEAD_EMPTY_TOPIC)
    assert bad_json == [LEAD_MALFORMED], bad_json
    return acc_report, physical


def main() -> int:
    rng = random.Random(SEED)
    namer = CompanyNamer(rng)
    accounts = build_accounts(rng, namer)
    contacts = build_contacts(rng, accounts, namer)
    leads = build_leads(rng, accounts, namer)

    paths = (OUT_DIR / "accounts.csv", OUT_DIR / "contacts.csv", OUT_DIR / "leads.jsonl")
    write_accounts(accounts, paths[0])
    write_contacts(contacts, paths[1])
    write_leads(leads, paths[2])

    report, physical = check(*paths)
    print(f"accounts.csv: {N_ACCOUNTS} rows, {physical} physical lines")
    for i, ln in report["bad"]:
        print(f"  bad data row {i} at physical line {ln}")
    for i, ln, n in report["multiline"]:
        print(f"  embedded line breaks: data row {i} (lines {ln}-{ln + n}, {n} break(s))")
    print(f"contacts.csv: {N_CONTACTS} rows; bad data rows {sorted(CON_BAD_ROWS)} (physical = row + 1)")
    print(f"leads.jsonl: {N_LEADS} lines; bad lines "
          f"{sorted([LEAD_MALFORMED, LEAD_BAD_VALUE, LEAD_BAD_RATING, LEAD_EMPTY_TOPIC])}")
    for p in paths:
        print(f"  sha256 {hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
