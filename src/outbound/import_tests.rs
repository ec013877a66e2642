use super::*;
use crate::outbound::testutil::{db, ms, spec};
use crate::outbound::{create_list, get_contact, ContactId, ContactState};
use crate::store::test_support::TestDb;

fn opts() -> ImportOptions {
    ImportOptions::new(CountryCode::new("44").unwrap())
}

fn setup() -> (tempfile::TempDir, TestDb, ListId) {
    let (dir, conn) = db();
    let id = create_list(&conn, &spec("imports"), 0).unwrap().id;
    (dir, conn, id)
}

fn errors(r: &ImportReport) -> Vec<String> {
    r.errors.iter().map(ToString::to_string).collect()
}

#[test]
fn csv_reports_bad_rows_by_spreadsheet_row_and_imports_the_good_ones() {
    let (_dir, conn, list) = setup();
    let csv = "\u{feff}Customer ID,Phone,Phone 2,Name,Due At,Product\n\
        C1,020 7946 0958,,Ann,2024-03-05,router\n\
        C2,0800 FLOWERS,,Bob,,\n\
        C3,+44 7700 900123,\"07700 900124; 07700 900125\",\"Cy\nSmith\",,modem\n\
        \n\
        C4,,,Dee,,\n\
        C5,0161 496 0000,,Eve,next week,\n\
        C6,0161 496 0001,,Fay,2024-03-05 14:30,,extra\n\
        C1,0161 496 0002,,Ann again,,\n\
        ,,,,,\n\
        C7,0113 496 0000,,Gus,,tv\n";
    let r = import_contacts_csv(&conn, list, csv.as_bytes(), &opts(), 1_000).unwrap();
    assert_eq!(
        errors(&r),
        [
            "row 3: Phone \"0800 FLOWERS\": contains letters",
            // Row 4 has a line break inside a cell, row 5 is blank: still spreadsheet rows.
            "row 6: no phone number",
            "row 7: due_at \"next week\": expected 2024-05-03, 2024-05-03 14:00 or 2024-05-03T14:00:00+01:00",
            "row 8: has 7 cells, the header has 6",
            "row 9: customer \"C1\" is already in this list (row 2)",
        ]
    );
    assert_eq!(r.rows, 8);
    assert_eq!(r.imported, 3);

    let c1 = get_contact(&conn, ContactId(1)).unwrap();
    assert_eq!(c1.customer_id.as_deref(), Some("C1"));
    assert_eq!(c1.phones, ["+442079460958"]);
    assert_eq!(c1.name.as_deref(), Some("Ann"));
    assert_eq!(c1.fields["Product"], "router");
    assert_eq!(c1.state, ContactState::Pending);
    assert_eq!(c1.created_at_ms, 1_000);
    // A bare date is due by the end of that (London) day.
    assert_eq!(c1.due_at_ms, Some(ms("2024-03-06T00:00:00Z")));

    let c3 = get_contact(&conn, ContactId(2)).unwrap();
    assert_eq!(
        c3.phones,
        ["+447700900123", "+447700900124", "+447700900125"]
    );
    assert_eq!(c3.name.as_deref(), Some("Cy\nSmith"));
    assert!(c3.due_at_ms.is_none());
    let c7 = get_contact(&conn, ContactId(3)).unwrap();
    assert_eq!(c7.customer_id.as_deref(), Some("C7"));

    // The same file as Excel on Windows writes it (CRLF), into another list: same rows.
    let other = create_list(&conn, &spec("crlf"), 0).unwrap().id;
    let crlf = csv.replace('\n', "\r\n");
    let r2 = import_contacts_csv(&conn, other, crlf.as_bytes(), &opts(), 1_000).unwrap();
    assert_eq!(errors(&r2), errors(&r));
}

#[test]
fn all_or_nothing_imports_nothing_when_a_row_is_bad() {
    let (_dir, conn, list) = setup();
    let mut o = opts();
    o.all_or_nothing = true;
    let csv = "customer_id,phone\nA,020 7946 0958\nB,12\nC,020 7946 0959\n";
    let r = import_contacts_csv(&conn, list, csv.as_bytes(), &o, 0).unwrap();
    assert_eq!(r.imported, 0);
    assert_eq!(
        errors(&r),
        ["row 3: phone \"12\": too short (4 digits with the country code, at least 7)"]
    );
    let n = crate::store::test_support::contacts(&conn);
    assert_eq!(n, 0);
    let good = "customer_id,phone\nA,020 7946 0958\nC,020 7946 0959\n";
    let r = import_contacts_csv(&conn, list, good.as_bytes(), &o, 0).unwrap();
    assert_eq!((r.imported, r.errors.len()), (2, 0));
    // The same customers again, while still pending: refused.
    let r = import_contacts_csv(&conn, list, good.as_bytes(), &opts(), 0).unwrap();
    assert_eq!(r.imported, 0);
    assert_eq!(
        errors(&r)[0],
        "row 2: customer \"A\" is already pending in this list"
    );
}

#[test]
fn a_hundred_rows_with_some_bad() {
    let (_dir, conn, list) = setup();
    let mut csv = String::from("customer_id,phone,name\n");
    let mut bad_rows = Vec::new();
    for i in 0..100 {
        let row = i + 2;
        if i % 17 == 5 {
            csv.push_str(&format!("K{i},not a number,Name {i}\n"));
            bad_rows.push(row);
        } else {
            csv.push_str(&format!("K{i},07700 900{i:03},Name {i}\n"));
        }
    }
    let r = import_contacts_csv(&conn, list, csv.as_bytes(), &opts(), 0).unwrap();
    assert_eq!(r.rows, 100);
    assert_eq!(r.imported, 100 - bad_rows.len());
    assert_eq!(r.errors.iter().map(|e| e.row).collect::<Vec<_>>(), bad_rows);
}

#[test]
fn header_problems_are_row_1() {
    let (_dir, conn, list) = setup();
    for (csv, want) in [
        ("customer_id,name\nA,Ann\n", "row 1: no phone column"),
        (
            "phone,Phone\n1,2\n",
            "row 1: column \"Phone\" appears twice",
        ),
        ("", "row 1: the file is empty"),
        (
            "customer,customer id,phone\n",
            "row 1: columns \"customer\" and \"customer id\" both give customer_id",
        ),
    ] {
        let r = import_contacts_csv(&conn, list, csv.as_bytes(), &opts(), 0).unwrap();
        assert_eq!(r.imported, 0);
        assert!(
            errors(&r)[0].starts_with(want),
            "{:?} vs {want}",
            errors(&r)
        );
    }
    let latin1: &[u8] = b"phone,name\n02079460958,Ren\xe9\n";
    let r = import_contacts_csv(&conn, list, latin1, &opts(), 0).unwrap();
    assert_eq!(
        errors(&r),
        ["row 2: is not UTF-8 text (save the file as \"CSV UTF-8\")"]
    );
}

#[test]
fn semicolon_separated_files_and_times() {
    let (_dir, conn, list) = setup();
    let mut o = opts();
    o.delimiter = b';';
    let csv = "phone;phone2;not_before;due_at\n\
        020 7946 0958;0161 496 0000;2024-03-05T10:00:00+01:00;2024-07-01 09:30\n";
    let r = import_contacts_csv(&conn, list, csv.as_bytes(), &o, 0).unwrap();
    assert_eq!((r.imported, r.errors.len()), (1, 0), "{:?}", r.errors);
    let c = get_contact(&conn, ContactId(1)).unwrap();
    assert_eq!(c.phones, ["+442079460958", "+441614960000"]);
    assert!(c.customer_id.is_none());
    assert_eq!(c.next_attempt_at_ms, Some(ms("2024-03-05T09:00:00Z")));
    // July: British Summer Time.
    assert_eq!(c.due_at_ms, Some(ms("2024-07-01T08:30:00Z")));
}

#[test]
fn json_import() {
    let (_dir, conn, list) = setup();
    let v = serde_json::json!([
        {"customer_id": "J1", "phone": ["020 7946 0958", "+33 1 23 45 67 89"], "name": "Jo",
         "fields": {"order": 17}, "tier": "gold"},
        {"customer_id": "J2", "phone": "abc"},
        "nonsense",
        {"customer_id": "J3", "phone": 7700900123u64}
    ]);
    let r = import_contacts_json(&conn, list, &v, &opts(), 0).unwrap();
    assert_eq!(
        errors(&r),
        [
            "row 2: phone \"abc\": contains letters",
            "row 3: is not an object"
        ]
    );
    assert_eq!(r.imported, 2);
    let c = get_contact(&conn, ContactId(1)).unwrap();
    assert_eq!(c.phones, ["+442079460958", "+33123456789"]);
    assert_eq!(c.fields["order"], 17);
    assert_eq!(c.fields["tier"], "gold");
    assert_eq!(
        get_contact(&conn, ContactId(2)).unwrap().phones,
        ["+447700900123"]
    );
    assert!(import_contacts_json(&conn, list, &serde_json::json!({}), &opts(), 0).is_err());
}
