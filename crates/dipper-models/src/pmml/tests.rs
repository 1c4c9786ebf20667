//! The compiled tree-ensemble path must agree with the interpreter to the bit on every row it scores (property
//! test over the sklearn GBM, random forest and GBM regression exports, with inputs drawn from the trees' own
//! thresholds so that ties are exercised), and load errors must name the element and line.

use std::path::Path;

use proptest::prelude::*;

use super::model::Kind;
use super::*;
use crate::model::Format;
use crate::ModelId;

fn load_text(text: &str) -> Result<PmmlModel, ModelError> {
    let ctx = LoadContext {
        source: "test.pmml".into(),
        id: ModelId {
            name: "test".into(),
            format: Format::Pmml,
            digest: "0".repeat(64),
        },
    };
    load(text.as_bytes(), &ctx)
}

fn fixture(case: &str) -> (PmmlModel, Vec<f64>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/interop")
        .join(case)
        .join("model.pmml");
    let text = std::fs::read_to_string(path).unwrap();
    // Every numeric constant in the file: the split thresholds, among others.
    let thresholds = text
        .split("value=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next()?.parse::<f64>().ok())
        .collect();
    (load_text(&text).unwrap(), thresholds)
}

fn compiled(m: &PmmlModel) -> usize {
    match &m.top.kind {
        Kind::Mining(mm) => mm.compiled_count(),
        _ => 0,
    }
}

impl PmmlModel {
    /// Scores one row with the interpreter only.
    fn predict_interpreted(&self, row: &[f64], out: &mut Predictions) -> Result<(), ModelError> {
        let mut frame = Frame::default();
        frame.interpret_only = true;
        out.reset(1, self.classes.len());
        out.reset_outputs(self.output_names.len());
        self.score_row(row, &mut frame, out, 0)
    }
}

fn agree(model: &PmmlModel, rows: &[Vec<f64>]) -> Result<(), TestCaseError> {
    let (mut fast, mut slow) = (Predictions::default(), Predictions::default());
    for row in rows {
        let a = model.predict_one(row, &mut fast).map_err(|e| e.to_string());
        let b = model
            .predict_interpreted(row, &mut slow)
            .map_err(|e| e.to_string());
        prop_assert_eq!(a.is_ok(), b.is_ok(), "row {:?}: {:?} vs {:?}", row, a, b);
        if a.is_ok() {
            prop_assert_eq!(&fast, &slow, "row {:?}", row);
        }
    }
    Ok(())
}

fn rows_strategy(n_features: usize, thresholds: Vec<f64>) -> impl Strategy<Value = Vec<Vec<f64>>> {
    let t = thresholds.clone();
    let value = prop_oneof![
        3 => (0..t.len()).prop_map(move |i| t[i]),
        2 => -5.0f64..5.0,
        1 => Just(f64::NAN),
    ];
    proptest::collection::vec(proptest::collection::vec(value, n_features), 1..16)
}

#[test]
fn sklearn_tree_ensembles_compile() {
    for case in ["fraud_gbm_pmml", "fraud_rf_pmml", "maint_gbr_pmml"] {
        assert_eq!(compiled(&fixture(case).0), 1, "{case}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn compiled_and_interpreted_gbm_agree(rows in rows_strategy(12, fixture("fraud_gbm_pmml").1)) {
        agree(&fixture("fraud_gbm_pmml").0, &rows)?;
    }

    #[test]
    fn compiled_and_interpreted_forest_agree(rows in rows_strategy(12, fixture("fraud_rf_pmml").1)) {
        agree(&fixture("fraud_rf_pmml").0, &rows)?;
    }

    #[test]
    fn compiled_and_interpreted_gbm_regression_agree(rows in rows_strategy(10, fixture("maint_gbr_pmml").1)) {
        agree(&fixture("maint_gbr_pmml").0, &rows)?;
    }
}

const HEAD: &str = r#"<?xml version="1.0"?>
<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4">
  <DataDictionary>
    <DataField name="x" optype="continuous" dataType="double"/>
    <DataField name="y" optype="continuous" dataType="double"/>
  </DataDictionary>
"#;

fn doc(model: &str) -> String {
    format!("{HEAD}{model}\n</PMML>")
}

#[test]
fn unsupported_things_are_named_with_their_line() {
    let e = load_text(&doc(r#"  <RegressionModel functionName="regression">
    <MiningSchema><MiningField name="x"/><MiningField name="y" usageType="target"/></MiningSchema>
    <LocalTransformations>
      <DerivedField name="z" optype="continuous" dataType="double">
        <Apply function="frobnicate"><FieldRef field="x"/></Apply>
      </DerivedField>
    </LocalTransformations>
    <RegressionTable intercept="1"><NumericPredictor name="z" coefficient="2"/></RegressionTable>
  </RegressionModel>"#))
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        "test.pmml line 11 <Apply>: unsupported PMML feature: function 'frobnicate' is not supported"
    );
    let e = load_text(&doc(r#"  <ClusteringModel functionName="clustering">
    <MiningSchema><MiningField name="x"/></MiningSchema>
  </ClusteringModel>"#))
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("line 7 <ClusteringModel>") && e.contains("clustering"),
        "{e}"
    );
    let e = load_text(&doc(r#"  <RegressionModel functionName="regression">
    <MiningSchema><MiningField name="x"/><MiningField name="nope"/></MiningSchema>
    <RegressionTable intercept="1"/>
  </RegressionModel>"#))
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("line 8 <MiningField>") && e.contains("'nope'"),
        "{e}"
    );
}

#[test]
fn invalid_and_missing_values_follow_the_mining_schema() {
    let m = load_text(&doc(r#"  <RegressionModel functionName="regression">
    <MiningSchema>
      <MiningField name="x" missingValueReplacement="10" outliers="asExtremeValues" lowValue="-1" highValue="100"/>
      <MiningField name="y" usageType="target"/>
    </MiningSchema>
    <RegressionTable intercept="1"><NumericPredictor name="x" coefficient="2"/></RegressionTable>
  </RegressionModel>"#))
    .unwrap();
    let mut out = Predictions::default();
    for (x, want) in [(f64::NAN, 21.0), (3.0, 7.0), (500.0, 201.0), (-7.0, -1.0)] {
        m.predict_one(&[x], &mut out).unwrap();
        assert_eq!(out.values(), [want], "x = {x}");
    }
}

#[test]
fn a_missing_value_under_null_prediction_is_a_row_error_not_a_guess() {
    let m = load_text(&doc(
        r#"  <TreeModel functionName="regression" missingValueStrategy="nullPrediction">
    <MiningSchema><MiningField name="x"/><MiningField name="y" usageType="target"/></MiningSchema>
    <Node score="0"><True/>
      <Node score="1"><SimplePredicate field="x" operator="lessThan" value="0"/></Node>
      <Node score="2"><True/></Node>
    </Node>
  </TreeModel>"#,
    ))
    .unwrap();
    let mut out = Predictions::default();
    m.predict_one(&[-1.0], &mut out).unwrap();
    assert_eq!(out.values(), [1.0]);
    let e = m
        .predict_one(&[f64::NAN], &mut out)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no prediction"), "{e}");
}

#[test]
fn text_functions_on_an_open_string_input_are_refused() {
    let model = |values: &str| {
        format!(
            r#"<?xml version="1.0"?>
<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4">
  <DataDictionary>
    <DataField name="s" optype="categorical" dataType="string">{values}</DataField>
    <DataField name="y" optype="continuous" dataType="double"/>
  </DataDictionary>
  <RegressionModel functionName="regression">
    <MiningSchema><MiningField name="s"/><MiningField name="y" usageType="target"/></MiningSchema>
    <LocalTransformations>
      <DerivedField name="u" optype="categorical" dataType="string">
        <Apply function="uppercase"><FieldRef field="s"/></Apply>
      </DerivedField>
    </LocalTransformations>
    <RegressionTable intercept="1"><CategoricalPredictor name="u" value="A" coefficient="2"/></RegressionTable>
  </RegressionModel>
</PMML>"#
        )
    };
    let e = load_text(&model("")).unwrap_err().to_string();
    assert!(
        e.contains("line 11 <Apply>")
            && e.contains("'uppercase' reads the text of input field 's'"),
        "{e}"
    );
    // With its values declared, every string the function can see is known: "a" scores as "A".
    let m = load_text(&model(r#"<Value value="a"/><Value value="b"/>"#)).unwrap();
    let mut dec =
        dipper_core::RowDecoder::new(m.info().features.clone(), dipper_core::MissingPolicy::Allow);
    let mut row = [0.0];
    let mut out = Predictions::default();
    dec.decode_json(br#"{"s": "a"}"#, &mut row).unwrap();
    m.predict_one(&row, &mut out).unwrap();
    assert_eq!(out.values(), [3.0]);
    dec.decode_json(br#"{"s": "zzz"}"#, &mut row).unwrap();
    let e = m.predict_one(&row, &mut out).unwrap_err().to_string();
    assert!(
        e.contains("field 's'") && e.contains("not a valid value"),
        "{e}"
    );
}
