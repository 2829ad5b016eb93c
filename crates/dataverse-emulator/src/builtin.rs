//! The built-in configuration: default identities and the catalogue: the samples' account,
//! contact, lead and task, and opportunity, product, incident and team from the standard schema.
//!
//! Logical names, types, max lengths and option values follow the standard Dataverse tables
//! (industrycode 1–33, leadsourcecode 1–10, …); `new_*` columns are the custom columns that
//! dvload's samples use.

use crate::config::{
    AppConfig, ApplicationUserConfig, CollectionConfig, ColumnConfig, ColumnType, Config,
    KeyConfig, NavigationConfig, OptionConfig, RecordConfig, RequiredLevel, Right, RoleConfig,
    SecretConfig, TableConfig, TablePrivilegesConfig, TenantConfig,
};
use crate::defaults;

fn col(name: &str, kind: ColumnType) -> ColumnConfig {
    ColumnConfig::new(name, kind)
}

fn text(name: &str, max: u32) -> ColumnConfig {
    let mut c = col(name, ColumnType::String);
    c.max_length = Some(max);
    c
}

fn memo(name: &str, max: u32) -> ColumnConfig {
    let mut c = col(name, ColumnType::Memo);
    c.max_length = Some(max);
    c
}

fn required(mut c: ColumnConfig, level: RequiredLevel) -> ColumnConfig {
    c.required = level;
    c
}

fn read_only(mut c: ColumnConfig) -> ColumnConfig {
    c.read_only = true;
    c
}

fn choice(name: &str, kind: ColumnType, options: &[(i64, &str)]) -> ColumnConfig {
    let mut c = col(name, kind);
    c.options = options
        .iter()
        .map(|(value, label)| OptionConfig {
            value: *value,
            label: (*label).to_string(),
        })
        .collect();
    c
}

fn money(name: &str) -> ColumnConfig {
    let mut c = col(name, ColumnType::Money);
    c.precision = Some(2);
    c.min = Some(-922_337_203_685_477.0);
    c.max = Some(922_337_203_685_477.0);
    c
}

fn integer(name: &str, min: f64, max: f64) -> ColumnConfig {
    let mut c = col(name, ColumnType::Integer);
    c.min = Some(min);
    c.max = Some(max);
    c
}

fn lookup(name: &str, target: &str) -> ColumnConfig {
    let mut c = col(name, ColumnType::Lookup);
    c.targets = vec![target.to_string()];
    c
}

fn poly(name: &str, kind: ColumnType, navs: &[(&str, &str)]) -> ColumnConfig {
    let mut c = col(name, kind);
    c.targets = navs.iter().map(|(_, t)| (*t).to_string()).collect();
    c.navigation = navs
        .iter()
        .map(|(n, t)| NavigationConfig {
            name: (*n).to_string(),
            target: (*t).to_string(),
        })
        .collect();
    c
}

fn system_columns() -> Vec<ColumnConfig> {
    vec![
        read_only(col("createdon", ColumnType::DateTime)),
        read_only(col("modifiedon", ColumnType::DateTime)),
        read_only(col("versionnumber", ColumnType::BigInt)),
    ]
}

/// Account `industrycode` options (standard option set).
const INDUSTRY: &[(i64, &str)] = &[
    (1, "Accounting"),
    (2, "Agriculture and Non-petrol Natural Resource Extraction"),
    (3, "Broadcasting Printing and Publishing"),
    (4, "Brokers"),
    (5, "Building Supply Retail"),
    (6, "Business Services"),
    (7, "Consulting"),
    (8, "Consumer Services"),
    (9, "Design, Direction and Creative Management"),
    (10, "Distributors, Dispatchers and Processors"),
    (11, "Doctor's Offices and Clinics"),
    (12, "Durable Manufacturing"),
    (13, "Eating and Drinking Places"),
    (14, "Entertainment Retail"),
    (15, "Equipment Rental and Leasing"),
    (16, "Financial"),
    (17, "Food and Tobacco Processing"),
    (18, "Inbound Capital Intensive Processing"),
    (19, "Inbound Repair and Services"),
    (20, "Insurance"),
    (21, "Legal Services"),
    (22, "Non-Durable Merchandise Retail"),
    (23, "Outbound Consumer Service"),
    (24, "Petrochemical Extraction and Distribution"),
    (25, "Service Retail"),
    (26, "SIG Affiliations"),
    (27, "Social Services"),
    (28, "Special Outbound Trade Contractors"),
    (29, "Specialty Realty"),
    (30, "Transportation"),
    (31, "Utility Creation and Distribution"),
    (32, "Vehicle Retail"),
    (33, "Wholesale"),
];

fn account() -> TableConfig {
    let mut columns = vec![
        required(text("name", 160), RequiredLevel::ApplicationRequired),
        text("accountnumber", 20),
        money("revenue"),
        integer("numberofemployees", 0.0, 1_000_000_000.0),
        choice("industrycode", ColumnType::Picklist, INDUSTRY),
        choice(
            "accountcategorycode",
            ColumnType::Picklist,
            &[(1, "Preferred Customer"), (2, "Standard")],
        ),
        text("telephone1", 50),
        text("emailaddress1", 100),
        text("websiteurl", 200),
        text("address1_city", 80),
        text("address1_country", 80),
        col("address1_latitude", ColumnType::Double),
        col("creditonhold", ColumnType::Boolean),
        memo("description", 2000),
        col("new_customersince", ColumnType::DateOnly),
        lookup("parentaccountid", "account"),
        lookup("primarycontactid", "contact"),
        lookup("originatingleadid", "lead"),
        choice(
            "statecode",
            ColumnType::State,
            &[(0, "Active"), (1, "Inactive")],
        ),
        choice(
            "statuscode",
            ColumnType::Status,
            &[(1, "Active"), (2, "Inactive")],
        ),
    ];
    columns.extend(system_columns());
    TableConfig {
        logical_name: "account".into(),
        schema_name: "Account".into(),
        entity_set: "accounts".into(),
        primary_id: "accountid".into(),
        primary_name: "name".into(),
        object_type_code: 1,
        bulk_operations: true,
        columns,
        keys: vec![KeyConfig {
            name: "accountnumber_key".into(),
            attributes: vec!["accountnumber".into()],
        }],
        display_name: None,
        labels: Default::default(),
        collections: vec![
            CollectionConfig {
                name: "Account_Tasks".into(),
                table: "task".into(),
                attribute: "regardingobjectid".into(),
            },
            CollectionConfig {
                name: "contact_customer_accounts".into(),
                table: "contact".into(),
                attribute: "parentcustomerid".into(),
            },
            CollectionConfig {
                name: "account_parent_account".into(),
                table: "account".into(),
                attribute: "parentaccountid".into(),
            },
        ],
        privileges_as: None,
    }
}

fn contact() -> TableConfig {
    let mut columns = vec![
        text("firstname", 50),
        required(text("lastname", 50), RequiredLevel::ApplicationRequired),
        read_only(text("fullname", 160)),
        text("emailaddress1", 100),
        text("jobtitle", 100),
        text("telephone1", 50),
        col("birthdate", ColumnType::DateOnly),
        choice(
            "gendercode",
            ColumnType::Picklist,
            &[(1, "Male"), (2, "Female")],
        ),
        choice(
            "preferredcontactmethodcode",
            ColumnType::Picklist,
            &[
                (1, "Any"),
                (2, "Email"),
                (3, "Phone"),
                (4, "Fax"),
                (5, "Mail"),
            ],
        ),
        // The service's labels of this column: false allows e-mail.
        choice(
            "donotemail",
            ColumnType::Boolean,
            &[(0, "Allow"), (1, "Do Not Allow")],
        ),
        col("lastusedincampaign", ColumnType::DateTime),
        choice(
            "new_interests",
            ColumnType::MultiSelectPicklist,
            &[
                (1, "Sports"),
                (2, "Music"),
                (3, "Travel"),
                (4, "Cooking"),
                (5, "Technology"),
                (6, "Reading"),
            ],
        ),
        memo("description", 2000),
        poly(
            "parentcustomerid",
            ColumnType::Customer,
            &[
                ("parentcustomerid_account", "account"),
                ("parentcustomerid_contact", "contact"),
            ],
        ),
        choice(
            "statecode",
            ColumnType::State,
            &[(0, "Active"), (1, "Inactive")],
        ),
        choice(
            "statuscode",
            ColumnType::Status,
            &[(1, "Active"), (2, "Inactive")],
        ),
    ];
    columns.extend(system_columns());
    TableConfig {
        logical_name: "contact".into(),
        schema_name: "Contact".into(),
        entity_set: "contacts".into(),
        primary_id: "contactid".into(),
        primary_name: "fullname".into(),
        object_type_code: 2,
        bulk_operations: true,
        columns,
        keys: vec![KeyConfig {
            name: "emailaddress1_key".into(),
            attributes: vec!["emailaddress1".into()],
        }],
        display_name: None,
        labels: Default::default(),
        collections: vec![CollectionConfig {
            name: "Contact_Tasks".into(),
            table: "task".into(),
            attribute: "regardingobjectid".into(),
        }],
        privileges_as: None,
    }
}

fn lead() -> TableConfig {
    let mut columns = vec![
        required(text("subject", 300), RequiredLevel::ApplicationRequired),
        text("firstname", 50),
        required(text("lastname", 50), RequiredLevel::ApplicationRequired),
        read_only(text("fullname", 160)),
        text("emailaddress1", 100),
        text("companyname", 100),
        choice(
            "leadsourcecode",
            ColumnType::Picklist,
            &[
                (1, "Advertisement"),
                (2, "Employee Referral"),
                (3, "External Referral"),
                (4, "Partner"),
                (5, "Public Relations"),
                (6, "Seminar"),
                (7, "Trade Show"),
                (8, "Web"),
                (9, "Word of Mouth"),
                (10, "Other"),
            ],
        ),
        choice(
            "leadqualitycode",
            ColumnType::Picklist,
            &[(1, "Hot"), (2, "Warm"), (3, "Cold")],
        ),
        money("estimatedamount"),
        col("new_receivedon", ColumnType::DateTime),
        memo("description", 2000),
        choice(
            "statecode",
            ColumnType::State,
            &[(0, "Open"), (1, "Qualified"), (2, "Disqualified")],
        ),
    ];
    columns.extend(system_columns());
    TableConfig {
        logical_name: "lead".into(),
        schema_name: "Lead".into(),
        entity_set: "leads".into(),
        primary_id: "leadid".into(),
        primary_name: "fullname".into(),
        object_type_code: 4,
        bulk_operations: true,
        columns,
        keys: Vec::new(),
        display_name: None,
        labels: Default::default(),
        collections: vec![CollectionConfig {
            name: "Lead_Tasks".into(),
            table: "task".into(),
            attribute: "regardingobjectid".into(),
        }],
        privileges_as: None,
    }
}

fn task() -> TableConfig {
    let mut columns = vec![
        required(text("subject", 200), RequiredLevel::ApplicationRequired),
        memo("description", 2000),
        col("scheduledend", ColumnType::DateTime),
        choice(
            "prioritycode",
            ColumnType::Picklist,
            &[(0, "Low"), (1, "Normal"), (2, "High")],
        ),
        integer("percentcomplete", 0.0, 100.0),
        poly(
            "regardingobjectid",
            ColumnType::Lookup,
            &[
                ("regardingobjectid_account_task", "account"),
                ("regardingobjectid_contact_task", "contact"),
                ("regardingobjectid_lead_task", "lead"),
            ],
        ),
        choice(
            "statecode",
            ColumnType::State,
            &[(0, "Open"), (1, "Completed"), (2, "Canceled")],
        ),
    ];
    columns.extend(system_columns());
    TableConfig {
        logical_name: "task".into(),
        schema_name: "Task".into(),
        entity_set: "tasks".into(),
        primary_id: "activityid".into(),
        primary_name: "subject".into(),
        object_type_code: 4212,
        bulk_operations: true,
        columns,
        keys: Vec::new(),
        display_name: None,
        labels: Default::default(),
        collections: Vec::new(),
        // Activities share one set of privileges (prvCreateActivity, …): Microsoft's
        // "ActivityPointer (activity) entity privileges" lists them for every activity type code,
        // the task's 4212 among them.
        privileges_as: Some("Activity".into()),
    }
}

/// A table of the standard schema beyond the samples': its columns and keys.
fn standard(
    logical: &str,
    schema: &str,
    set: &str,
    primary_name: &str,
    object_type_code: i64,
    mut columns: Vec<ColumnConfig>,
) -> TableConfig {
    columns.extend(system_columns());
    TableConfig {
        logical_name: logical.into(),
        schema_name: schema.into(),
        entity_set: set.into(),
        primary_id: format!("{logical}id"),
        primary_name: primary_name.into(),
        object_type_code,
        bulk_operations: true,
        columns,
        keys: Vec::new(),
        display_name: None,
        labels: Default::default(),
        collections: Vec::new(),
        privileges_as: None,
    }
}

fn customer(name: &str) -> ColumnConfig {
    poly(
        name,
        ColumnType::Customer,
        &[
            (&format!("{name}_account"), "account"),
            (&format!("{name}_contact"), "contact"),
        ],
    )
}

fn date_only(name: &str) -> ColumnConfig {
    col(name, ColumnType::DateOnly)
}

fn opportunity() -> TableConfig {
    standard(
        "opportunity",
        "Opportunity",
        "opportunities",
        "name",
        3,
        vec![
            required(text("name", 300), RequiredLevel::ApplicationRequired),
            customer("customerid"),
            lookup("parentaccountid", "account"),
            lookup("parentcontactid", "contact"),
            lookup("originatingleadid", "lead"),
            money("estimatedvalue"),
            date_only("estimatedclosedate"),
            money("actualvalue"),
            date_only("actualclosedate"),
            integer("closeprobability", 0.0, 100.0),
            choice(
                "opportunityratingcode",
                ColumnType::Picklist,
                &[(1, "Hot"), (2, "Warm"), (3, "Cold")],
            ),
            memo("description", 2000),
            choice(
                "statecode",
                ColumnType::State,
                &[(0, "Open"), (1, "Won"), (2, "Lost")],
            ),
            choice(
                "statuscode",
                ColumnType::Status,
                &[
                    (1, "In Progress"),
                    (2, "On Hold"),
                    (3, "Won"),
                    (4, "Canceled"),
                    (5, "Out-Sold"),
                ],
            ),
        ],
    )
}

fn product() -> TableConfig {
    standard(
        "product",
        "Product",
        "products",
        "name",
        1024,
        vec![
            required(text("name", 100), RequiredLevel::SystemRequired),
            required(text("productnumber", 100), RequiredLevel::SystemRequired),
            money("price"),
            money("standardcost"),
            integer("quantitydecimal", 0.0, 5.0),
            choice(
                "producttypecode",
                ColumnType::Picklist,
                &[
                    (1, "Sales Inventory"),
                    (2, "Miscellaneous Charges"),
                    (3, "Services"),
                    (4, "Flat Fees"),
                ],
            ),
            date_only("validfromdate"),
            date_only("validtodate"),
            memo("description", 2000),
            choice(
                "statecode",
                ColumnType::State,
                &[
                    (0, "Active"),
                    (1, "Retired"),
                    (2, "Draft"),
                    (3, "Under Revision"),
                ],
            ),
        ],
    )
}

fn incident() -> TableConfig {
    standard(
        "incident",
        "Incident",
        "incidents",
        "title",
        112,
        vec![
            required(text("title", 200), RequiredLevel::SystemRequired),
            text("ticketnumber", 100),
            required(customer("customerid"), RequiredLevel::SystemRequired),
            lookup("primarycontactid", "contact"),
            choice(
                "prioritycode",
                ColumnType::Picklist,
                &[(1, "High"), (2, "Normal"), (3, "Low")],
            ),
            choice(
                "caseorigincode",
                ColumnType::Picklist,
                &[
                    (1, "Phone"),
                    (2, "Email"),
                    (3, "Web"),
                    (2483, "Facebook"),
                    (3986, "Twitter"),
                ],
            ),
            choice(
                "casetypecode",
                ColumnType::Picklist,
                &[(1, "Question"), (2, "Problem"), (3, "Request")],
            ),
            memo("description", 2000),
            choice(
                "statecode",
                ColumnType::State,
                &[(0, "Active"), (1, "Resolved"), (2, "Cancelled")],
            ),
            choice(
                "statuscode",
                ColumnType::Status,
                &[
                    (1, "In Progress"),
                    (2, "On Hold"),
                    (3, "Waiting for Details"),
                    (4, "Researching"),
                    (5, "Problem Solved"),
                    (6, "Cancelled"),
                    (1000, "Information Provided"),
                    (2000, "Merged"),
                ],
            ),
        ],
    )
}

fn team() -> TableConfig {
    standard(
        "team",
        "Team",
        "teams",
        "name",
        9,
        vec![
            required(text("name", 160), RequiredLevel::SystemRequired),
            text("emailaddress", 100),
            memo("description", 2000),
            choice(
                "teamtype",
                ColumnType::Picklist,
                &[
                    (0, "Owner"),
                    (1, "Access"),
                    (2, "Microsoft Entra ID Security Group"),
                    (3, "Microsoft Entra ID Office Group"),
                ],
            ),
        ],
    )
}

/// The people of the environment (`systemuser`): id, first name, last name, email, title.
/// Invented names; the application user's own record is added from `application_users`.
const PEOPLE: &[(&str, &str, &str, &str, &str)] = &[
    (
        "a1d2c3b4-0001-4e5f-8a9b-000000000001",
        "Avery",
        "Howard",
        "avery.howard@emulator.onmicrosoft.com",
        "Sales Manager",
    ),
    (
        "a1d2c3b4-0001-4e5f-8a9b-000000000002",
        "Dana",
        "Whitfield",
        "dana.whitfield@emulator.onmicrosoft.com",
        "Account Executive",
    ),
    (
        "a1d2c3b4-0001-4e5f-8a9b-000000000003",
        "Jordan",
        "Ellis",
        "jordan.ellis@emulator.onmicrosoft.com",
        "Support Engineer",
    ),
];

/// The teams of the environment: id, name.
const TEAMS: &[(&str, &str)] = &[
    ("b2e3d4c5-0002-4f6a-9b8c-000000000001", "Sales"),
    ("b2e3d4c5-0002-4f6a-9b8c-000000000002", "Customer Service"),
];

/// The rows the built-in environment starts with: its people and teams.
fn records() -> Vec<RecordConfig> {
    let text = |v: &str| serde_json::Value::String(v.to_string());
    let mut out: Vec<RecordConfig> = PEOPLE
        .iter()
        .map(|(id, first, last, email, title)| RecordConfig {
            table: "systemuser".into(),
            id: (*id).into(),
            fields: [
                ("firstname", text(first)),
                ("lastname", text(last)),
                ("internalemailaddress", text(email)),
                ("domainname", text(email)),
                ("title", text(title)),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        })
        .collect();
    out.extend(TEAMS.iter().map(|(id, name)| {
        RecordConfig {
            table: "team".into(),
            id: (*id).into(),
            fields: [
                ("name".to_string(), text(name)),
                ("teamtype".to_string(), serde_json::Value::from(0)),
            ]
            .into_iter()
            .collect(),
        }
    }));
    out
}

/// The users of the environment (the standard `systemuser` table's columns a client reads and
/// matches on; its rows come from the configuration, not from writes).
fn systemuser() -> TableConfig {
    let mut t = standard(
        "systemuser",
        "SystemUser",
        "systemusers",
        "fullname",
        8,
        vec![
            text("firstname", 64),
            required(text("lastname", 64), RequiredLevel::ApplicationRequired),
            read_only(text("fullname", 200)),
            required(text("domainname", 1024), RequiredLevel::SystemRequired),
            text("internalemailaddress", 100),
            text("title", 128),
            col("applicationid", ColumnType::Uniqueidentifier),
            col("azureactivedirectoryobjectid", ColumnType::Uniqueidentifier),
            read_only(col("isdisabled", ColumnType::Boolean)),
        ],
    );
    t.bulk_operations = false;
    // prvReadUser, prvAppendToUser, … (not prv…SystemUser).
    t.privileges_as = Some("User".into());
    t
}

/// Solutions (`solution`) and what they hold (`solutioncomponent`), read by clients that list a
/// solution's tables; rows come from `[[solutions]]` of the configuration.
fn solution_tables() -> [TableConfig; 2] {
    let mut solution = standard(
        "solution",
        "Solution",
        "solutions",
        "friendlyname",
        7100,
        vec![
            required(text("uniquename", 65), RequiredLevel::SystemRequired),
            required(text("friendlyname", 256), RequiredLevel::SystemRequired),
            text("version", 256),
            read_only(col("ismanaged", ColumnType::Boolean)),
        ],
    );
    solution.bulk_operations = false;
    let mut component = standard(
        "solutioncomponent",
        "SolutionComponent",
        "solutioncomponents",
        "",
        7103,
        vec![
            lookup("solutionid", "solution"),
            col("objectid", ColumnType::Uniqueidentifier),
            choice(
                "componenttype",
                ColumnType::Picklist,
                &[
                    (1, "Entity"),
                    (2, "Attribute"),
                    (9, "Option Set"),
                    (10, "Entity Relationship"),
                    (14, "Entity Key"),
                    (20, "Role"),
                    (29, "Workflow"),
                    (61, "Web Resource"),
                    (80, "Model-driven App"),
                ],
            ),
        ],
    );
    component.bulk_operations = false;
    [solution, component]
}

/// A user- or team-owned table: its `ownerid` (Owner, to systemuser or team; SystemRequired,
/// and the caller when a create leaves it out).
fn user_owned(mut t: TableConfig) -> TableConfig {
    let mut owner = col("ownerid", ColumnType::Owner);
    owner.targets = vec!["systemuser".into(), "team".into()];
    owner.required = RequiredLevel::SystemRequired;
    owner.display_name = Some("Owner".into());
    t.columns.push(owner);
    t
}

/// Builds the built-in configuration (see [`Config::default`]).
pub fn builtin_config() -> Config {
    let tables = vec![
        user_owned(account()),
        user_owned(contact()),
        user_owned(lead()),
        user_owned(task()),
        user_owned(opportunity()),
        product(),
        user_owned(incident()),
        team(),
        systemuser(),
    ]
    .into_iter()
    .chain(solution_tables())
    .map(with_display_names)
    .collect::<Vec<_>>();
    // Every right on every table, but only reading (and pointing lookups at) users and reading
    // solutions: a loader's role has no business creating them.
    let privileges = tables
        .iter()
        .map(|t| TablePrivilegesConfig {
            table: t.logical_name.clone(),
            rights: if t.logical_name == "systemuser" {
                vec![Right::Read, Right::AppendTo]
            } else if matches!(t.logical_name.as_str(), "solution" | "solutioncomponent") {
                vec![Right::Read]
            } else {
                Right::ALL.to_vec()
            },
        })
        .collect();
    Config {
        tenants: vec![TenantConfig {
            id: defaults::TENANT_ID.into(),
            domains: vec!["emulator.onmicrosoft.com".into()],
        }],
        apps: vec![AppConfig {
            client_id: defaults::CLIENT_ID.into(),
            tenant_id: defaults::TENANT_ID.into(),
            name: "dvload".into(),
            object_id: defaults::SERVICE_PRINCIPAL_OBJECT_ID.into(),
            secrets: vec![SecretConfig {
                value: defaults::CLIENT_SECRET.into(),
                expires: None,
            }],
            certificates: Vec::new(),
        }],
        application_users: vec![ApplicationUserConfig {
            app_id: defaults::CLIENT_ID.into(),
            systemuser_id: defaults::APP_USER_ID.into(),
            roles: vec![defaults::ROLE_NAME.into()],
            disabled: false,
        }],
        roles: vec![RoleConfig {
            name: defaults::ROLE_NAME.into(),
            privileges,
            global: Vec::new(),
        }],
        tables,
        records: records(),
        ..Config::empty()
    }
}

/// Display names of the standard tables and columns, as a Dataverse environment in English shows
/// them (the "Display name" column of each table's column list in Power Apps), and a few of their
/// German (1031) labels, so that clients matching headers to columns by label, in any language,
/// have real ones to match.
const DISPLAY_NAMES: &[(&str, &str, &str)] = &[
    ("account", "", "Account"),
    ("account", "accountid", "Account"),
    ("account", "name", "Account Name"),
    ("account", "accountnumber", "Account Number"),
    ("account", "revenue", "Annual Revenue"),
    ("account", "numberofemployees", "Number of Employees"),
    ("account", "industrycode", "Industry"),
    ("account", "accountcategorycode", "Category"),
    ("account", "telephone1", "Main Phone"),
    ("account", "emailaddress1", "Email"),
    ("account", "websiteurl", "Website"),
    ("account", "address1_city", "Address 1: City"),
    ("account", "address1_country", "Address 1: Country/Region"),
    ("account", "address1_latitude", "Address 1: Latitude"),
    ("account", "creditonhold", "Credit Hold"),
    ("account", "description", "Description"),
    ("account", "parentaccountid", "Parent Account"),
    ("account", "primarycontactid", "Primary Contact"),
    ("account", "originatingleadid", "Originating Lead"),
    ("account", "statecode", "Status"),
    ("account", "statuscode", "Status Reason"),
    ("contact", "", "Contact"),
    ("contact", "contactid", "Contact"),
    ("contact", "firstname", "First Name"),
    ("contact", "lastname", "Last Name"),
    ("contact", "fullname", "Full Name"),
    ("contact", "emailaddress1", "Email"),
    ("contact", "jobtitle", "Job Title"),
    ("contact", "telephone1", "Business Phone"),
    ("contact", "birthdate", "Birthday"),
    ("contact", "gendercode", "Gender"),
    (
        "contact",
        "preferredcontactmethodcode",
        "Preferred Method of Contact",
    ),
    ("contact", "donotemail", "Do not allow Emails"),
    (
        "contact",
        "lastusedincampaign",
        "Last Date Included in Campaign",
    ),
    ("contact", "description", "Description"),
    ("contact", "parentcustomerid", "Company Name"),
    ("contact", "statecode", "Status"),
    ("contact", "statuscode", "Status Reason"),
    ("lead", "", "Lead"),
    ("lead", "leadid", "Lead"),
    ("lead", "subject", "Topic"),
    ("lead", "firstname", "First Name"),
    ("lead", "lastname", "Last Name"),
    ("lead", "fullname", "Name"),
    ("lead", "emailaddress1", "Email"),
    ("lead", "companyname", "Company Name"),
    ("lead", "leadsourcecode", "Lead Source"),
    ("lead", "leadqualitycode", "Rating"),
    ("lead", "estimatedamount", "Est. Value"),
    ("lead", "description", "Description"),
    ("lead", "statecode", "Status"),
    ("task", "", "Task"),
    ("task", "activityid", "Activity"),
    ("task", "subject", "Subject"),
    ("task", "description", "Description"),
    ("task", "scheduledend", "Due Date"),
    ("task", "prioritycode", "Priority"),
    ("task", "percentcomplete", "Percent Complete"),
    ("task", "regardingobjectid", "Regarding"),
    ("task", "statecode", "Activity Status"),
    ("opportunity", "", "Opportunity"),
    ("opportunity", "name", "Topic"),
    ("opportunity", "customerid", "Potential Customer"),
    ("opportunity", "parentaccountid", "Account"),
    ("opportunity", "parentcontactid", "Contact"),
    ("opportunity", "originatingleadid", "Originating Lead"),
    ("opportunity", "estimatedvalue", "Est. Revenue"),
    ("opportunity", "estimatedclosedate", "Est. Close Date"),
    ("opportunity", "actualvalue", "Actual Revenue"),
    ("opportunity", "actualclosedate", "Actual Close Date"),
    ("opportunity", "closeprobability", "Probability"),
    ("opportunity", "opportunityratingcode", "Rating"),
    ("opportunity", "description", "Description"),
    ("opportunity", "statecode", "Status"),
    ("opportunity", "statuscode", "Status Reason"),
    ("product", "", "Product"),
    ("product", "name", "Name"),
    ("product", "productnumber", "Product ID"),
    ("product", "price", "List Price"),
    ("product", "standardcost", "Standard Cost"),
    ("product", "quantitydecimal", "Decimals Supported"),
    ("product", "producttypecode", "Product Type"),
    ("product", "validfromdate", "Valid From"),
    ("product", "validtodate", "Valid To"),
    ("product", "description", "Description"),
    ("product", "statecode", "Status"),
    ("incident", "", "Case"),
    ("incident", "title", "Case Title"),
    ("incident", "ticketnumber", "Case Number"),
    ("incident", "customerid", "Customer"),
    ("incident", "primarycontactid", "Contact"),
    ("incident", "prioritycode", "Priority"),
    ("incident", "caseorigincode", "Origin"),
    ("incident", "casetypecode", "Case Type"),
    ("incident", "description", "Description"),
    ("incident", "statecode", "Status"),
    ("incident", "statuscode", "Status Reason"),
    ("systemuser", "", "User"),
    ("systemuser", "systemuserid", "User"),
    ("systemuser", "firstname", "First Name"),
    ("systemuser", "lastname", "Last Name"),
    ("systemuser", "fullname", "Full Name"),
    ("systemuser", "domainname", "User Name"),
    ("systemuser", "internalemailaddress", "Primary Email"),
    ("systemuser", "title", "Title"),
    ("systemuser", "applicationid", "Application ID"),
    (
        "systemuser",
        "azureactivedirectoryobjectid",
        "Azure AD Object ID",
    ),
    ("systemuser", "isdisabled", "Status"),
    ("team", "", "Team"),
    ("team", "name", "Team Name"),
    ("team", "emailaddress", "Email"),
    ("team", "description", "Description"),
    ("team", "teamtype", "Team Type"),
];

/// German labels (1031) of some of the same.
const GERMAN: &[(&str, &str, &str)] = &[
    ("account", "", "Firma"),
    ("account", "name", "Firmenname"),
    ("contact", "", "Kontakt"),
    ("contact", "firstname", "Vorname"),
    ("contact", "lastname", "Nachname"),
    ("contact", "emailaddress1", "E-Mail"),
    ("task", "", "Aufgabe"),
    ("task", "subject", "Betreff"),
];

fn with_display_names(mut t: TableConfig) -> TableConfig {
    let find = |list: &[(&str, &str, &str)], column: &str| {
        list.iter()
            .find(|(table, c, _)| *table == t.logical_name && *c == column)
            .map(|(_, _, label)| (*label).to_string())
    };
    t.display_name = find(DISPLAY_NAMES, "");
    if let Some(l) = find(GERMAN, "") {
        t.labels.insert("1031".into(), l);
    }
    let mut columns = std::mem::take(&mut t.columns);
    for c in &mut columns {
        c.display_name = find(DISPLAY_NAMES, &c.name).or(c.display_name.take());
        if let Some(l) = find(GERMAN, &c.name) {
            c.labels.insert("1031".into(), l);
        }
    }
    t.columns = columns;
    t
}
