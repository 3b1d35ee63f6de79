PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE runs (
	id INTEGER NOT NULL, 
	sha VARCHAR(64) NOT NULL, 
	message TEXT NOT NULL, 
	author VARCHAR(200) NOT NULL, 
	seed INTEGER NOT NULL, 
	dataset_window VARCHAR(40) NOT NULL, 
	failure_modes JSON NOT NULL, 
	status VARCHAR(32) NOT NULL, 
	created_at FLOAT NOT NULL, 
	updated_at FLOAT NOT NULL, 
	finished_at FLOAT, 
	PRIMARY KEY (id)
);
INSERT INTO runs VALUES(1,'66edfed0fddcb0fd84736d702a15857710dacfde','made by 1c03486, failed at data validation','',41,'2025-01-01..2025-06-30','["schema_validation"]','failed',1796599157.7366917133,1796599157.9240102767,1796599157.9240102767);
INSERT INTO runs VALUES(2,'7e1c08b8810694cd1dd66fccf6cdc84cf201d8de','made by 1c03486, CI passed','',42,'2025-01-01..2025-06-30','[]','ci_complete',1796599170.1032276153,1796599184.6623642444,1796599184.6623642444);
CREATE TABLE logs (
	id INTEGER NOT NULL, 
	run_id INTEGER NOT NULL, 
	step VARCHAR(64) NOT NULL, 
	attempt INTEGER NOT NULL, 
	ts FLOAT NOT NULL, 
	level VARCHAR(10) NOT NULL, 
	message TEXT NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO logs VALUES(1,1,'commit_received',1,1796599157.7581067084,'INFO','started commit_received (attempt 1) on vm:13010:899ae4');
INSERT INTO logs VALUES(2,1,'commit_received',1,1796599157.7603929042,'INFO','commit 66edfed0fddcb0fd84736d702a15857710dacfde by unknown: ''made by 1c03486, failed at data validation''');
INSERT INTO logs VALUES(3,1,'commit_received',1,1796599157.7608575821,'INFO','seed 41; dataset window 2025-01-01 .. 2025-06-30 (181 days)');
INSERT INTO logs VALUES(4,1,'commit_received',1,1796599157.7612364292,'WARNING','failure modes on for this run: schema_validation');
INSERT INTO logs VALUES(5,1,'commit_received',1,1796599157.7655603885,'INFO','commit_received finished in 0.02 s');
INSERT INTO logs VALUES(6,1,'data_validation',1,1796599157.7703866958,'INFO','started data_validation (attempt 1) on vm:13010:899ae4');
INSERT INTO logs VALUES(7,1,'ci_tests',1,1796599157.7785227298,'INFO','started ci_tests (attempt 1) on vm:13010:899ae4');
INSERT INTO logs VALUES(8,1,'ci_tests',1,1796599157.8385531902,'INFO','$ pytest /tmp/old-1c03486/engine/steps/ci_tests_suite -c /tmp/old-1c03486/engine/steps/ci_tests_suite/pytest.ini --rootdir /tmp/old-1c03486 --junitxml=/tmp/store-1c03486/runs/1/junit-1.xml');
INSERT INTO logs VALUES(9,1,'data_validation',1,1796599157.8906269073,'INFO','validating 40,000 claims, 8 columns');
INSERT INTO logs VALUES(10,1,'data_validation',1,1796599157.9129383564,'ERROR','FAIL required_columns: Fix the column layout (missing column: diagnosis_group): each of claim_id, service_date, cpt_bucket, provider_type, diagnosis_group, billed_amount, allowed_amount, patient_age, outcome must appear exactly once; extra columns are ignored.');
INSERT INTO logs VALUES(11,1,'data_validation',1,1796599157.9136612414,'ERROR','FAIL dtypes: Not fully evaluated because diagnosis_group is missing; fix required_columns and dtypes first.');
INSERT INTO logs VALUES(12,1,'data_validation',1,1796599157.9141318797,'ERROR','FAIL allowed_categories: Not fully evaluated because diagnosis_group is missing; fix required_columns and dtypes first.');
INSERT INTO logs VALUES(13,1,'data_validation',1,1796599157.9145379066,'INFO','PASS billed_amount_positive');
INSERT INTO logs VALUES(14,1,'data_validation',1,1796599157.9149196148,'INFO','PASS allowed_amount_positive');
INSERT INTO logs VALUES(15,1,'data_validation',1,1796599157.9153056144,'INFO','PASS allowed_within_billed');
INSERT INTO logs VALUES(16,1,'data_validation',1,1796599157.9156553745,'INFO','PASS patient_age_range');
INSERT INTO logs VALUES(17,1,'data_validation',1,1796599157.916125536,'ERROR','FAIL no_nulls: Not fully evaluated because diagnosis_group is missing; fix required_columns and dtypes first.');
INSERT INTO logs VALUES(18,1,'data_validation',1,1796599157.9207141399,'INFO','PASS unique_claim_id');
INSERT INTO logs VALUES(19,1,'data_validation',1,1796599157.9217197894,'ERROR','data contract violated in 4 checks (required_columns, dtypes, allowed_categories, no_nulls); first: Fix the column layout (missing column: diagnosis_group): each of claim_id, service_date, cpt_bucket, provider_type, diagnosis_group, billed_amount, allowed_amount, patient_age, outcome must appear exactly once; extra columns are ignored.');
INSERT INTO logs VALUES(20,1,'ci_tests',1,1796599157.9862477779,'INFO','ruff: 0 issue(s) in engine/ml');
INSERT INTO logs VALUES(21,1,'ci_tests',1,1796599162.5458428859,'INFO','...                                                                      [100%]');
INSERT INTO logs VALUES(22,1,'ci_tests',1,1796599162.5466060638,'INFO','3 passed in 2.11s');
INSERT INTO logs VALUES(23,1,'ci_tests',1,1796599162.5487020015,'INFO','ci_tests finished in 4.78 s');
INSERT INTO logs VALUES(24,2,'commit_received',1,1796599170.1309735774,'INFO','started commit_received (attempt 1) on vm:13213:b243a3');
INSERT INTO logs VALUES(25,2,'commit_received',1,1796599170.1331636905,'INFO','commit 7e1c08b8810694cd1dd66fccf6cdc84cf201d8de by unknown: ''made by 1c03486, CI passed''');
INSERT INTO logs VALUES(26,2,'commit_received',1,1796599170.1336407661,'INFO','seed 42; dataset window 2025-01-01 .. 2025-06-30 (181 days)');
INSERT INTO logs VALUES(27,2,'commit_received',1,1796599170.1382303237,'INFO','commit_received finished in 0.01 s');
INSERT INTO logs VALUES(28,2,'ci_tests',1,1796599170.1450703143,'INFO','started ci_tests (attempt 1) on vm:13213:b243a3');
INSERT INTO logs VALUES(29,2,'data_validation',1,1796599170.1497433185,'INFO','started data_validation (attempt 1) on vm:13213:b243a3');
INSERT INTO logs VALUES(30,2,'ci_tests',1,1796599170.1857464313,'INFO','$ pytest /tmp/old-1c03486/engine/steps/ci_tests_suite -c /tmp/old-1c03486/engine/steps/ci_tests_suite/pytest.ini --rootdir /tmp/old-1c03486 --junitxml=/tmp/store-1c03486/runs/2/junit-1.xml');
INSERT INTO logs VALUES(31,2,'data_validation',1,1796599170.314865589,'INFO','validating 40,000 claims, 9 columns');
INSERT INTO logs VALUES(32,2,'data_validation',1,1796599170.3824799061,'INFO','PASS required_columns');
INSERT INTO logs VALUES(33,2,'data_validation',1,1796599170.3835527896,'INFO','PASS dtypes');
INSERT INTO logs VALUES(34,2,'data_validation',1,1796599170.3964686393,'INFO','PASS allowed_categories');
INSERT INTO logs VALUES(35,2,'data_validation',1,1796599170.3976392745,'INFO','PASS billed_amount_positive');
INSERT INTO logs VALUES(36,2,'data_validation',1,1796599170.3984456062,'INFO','PASS allowed_amount_positive');
INSERT INTO logs VALUES(37,2,'data_validation',1,1796599170.3991112709,'INFO','PASS allowed_within_billed');
INSERT INTO logs VALUES(38,2,'data_validation',1,1796599170.3998339175,'INFO','PASS patient_age_range');
INSERT INTO logs VALUES(39,2,'data_validation',1,1796599170.4113783836,'INFO','PASS no_nulls');
INSERT INTO logs VALUES(40,2,'data_validation',1,1796599170.4295485019,'INFO','PASS unique_claim_id');
INSERT INTO logs VALUES(41,2,'data_validation',1,1796599170.4434003829,'INFO','data_validation finished in 0.30 s');
INSERT INTO logs VALUES(42,2,'ci_quick_train',1,1796599170.4548728465,'INFO','started ci_quick_train (attempt 1) on vm:13213:b243a3');
INSERT INTO logs VALUES(43,2,'ci_tests',1,1796599170.4668881893,'INFO','ruff: 0 issue(s) in engine/ml');
INSERT INTO logs VALUES(44,2,'ci_quick_train',1,1796599171.1490018368,'INFO','training {''n_estimators'': 20, ''max_leaf_nodes'': 128, ''max_features'': 4, ''min_samples_leaf'': 10, ''max_samples'': 0.5, ''n_jobs'': 2} on 4,800 claims; validation 1,200, holdout 2,000');
INSERT INTO logs VALUES(45,2,'ci_quick_train',1,1796599171.5000429154,'INFO','fit in 0.27 s; threshold 0.3569; ROC-AUC 0.8870, F1 0.8688');
INSERT INTO logs VALUES(46,2,'ci_quick_train',1,1796599171.522927761,'INFO','ci_quick_train finished in 1.08 s');
INSERT INTO logs VALUES(47,2,'mlflow_log_ci',1,1796599171.5303425788,'INFO','started mlflow_log_ci (attempt 1) on vm:13213:b243a3');
INSERT INTO logs VALUES(48,2,'ci_tests',1,1796599179.766151905,'INFO','...                                                                      [100%]');
INSERT INTO logs VALUES(49,2,'ci_tests',1,1796599179.7669062614,'INFO','3 passed in 5.19s');
INSERT INTO logs VALUES(50,2,'ci_tests',1,1796599179.7906191349,'INFO','ci_tests finished in 9.63 s');
INSERT INTO logs VALUES(51,2,'mlflow_log_ci',1,1796599183.5439352988,'INFO','logging to MLflow at sqlite:////tmp/store-1c03486/mlflow.db');
INSERT INTO logs VALUES(52,2,'mlflow_log_ci',1,1796599184.6569879054,'INFO','MLflow run a90e3d23b31149c181aaa6080f603f39: 7 metrics; training data 4,800 claims, digest 182f3399728c19d7a0632c48e20243dd');
INSERT INTO logs VALUES(53,2,'mlflow_log_ci',1,1796599184.6637864112,'INFO','mlflow_log_ci finished in 13.13 s');
CREATE TABLE audit (
	id INTEGER NOT NULL, 
	ts FLOAT NOT NULL, 
	actor VARCHAR(200) NOT NULL, 
	action VARCHAR(40) NOT NULL, 
	run_id INTEGER, 
	comment TEXT NOT NULL, 
	detail JSON, 
	PRIMARY KEY (id)
);
INSERT INTO audit VALUES(1,1796599155.1053478717,'cli','failure_mode',NULL,'schema_validation on','{"mode": "schema_validation", "enabled": true}');
INSERT INTO audit VALUES(2,1796599157.7406408786,'cli','commit',1,'made by 1c03486, failed at data validation','{"sha": "66edfed0fddcb0fd84736d702a15857710dacfde", "seed": 41, "window": "2025-01-01..2025-06-30", "failure_modes": ["schema_validation"], "trigger": "commit", "shift": null}');
INSERT INTO audit VALUES(3,1796599166.8141069411,'cli','failure_mode',NULL,'schema_validation off','{"mode": "schema_validation", "enabled": false}');
INSERT INTO audit VALUES(4,1796599170.1073794365,'cli','commit',2,'made by 1c03486, CI passed','{"sha": "7e1c08b8810694cd1dd66fccf6cdc84cf201d8de", "seed": 42, "window": "2025-01-01..2025-06-30", "failure_modes": [], "trigger": "commit", "shift": null}');
CREATE TABLE failure_modes (
	name VARCHAR(40) NOT NULL, 
	enabled BOOLEAN NOT NULL, 
	updated_at FLOAT NOT NULL, 
	PRIMARY KEY (name)
);
INSERT INTO failure_modes VALUES('schema_validation',0,1796599166.8078913688);
CREATE TABLE alias_history (
	id INTEGER NOT NULL, 
	alias VARCHAR(40) NOT NULL, 
	version INTEGER NOT NULL, 
	run_id INTEGER, 
	since FLOAT NOT NULL, 
	until FLOAT, 
	action VARCHAR(20) NOT NULL, 
	moved_by VARCHAR(200) NOT NULL, 
	reason TEXT NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE workers (
	id VARCHAR(120) NOT NULL, 
	host VARCHAR(255) NOT NULL, 
	pid INTEGER NOT NULL, 
	started_at FLOAT NOT NULL, 
	heartbeat_at FLOAT NOT NULL, 
	active_steps INTEGER NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO workers VALUES('vm:13010:899ae4','vm',13010,1796599157.7344894409,1796599161.7649853229,1);
INSERT INTO workers VALUES('vm:13213:b243a3','vm',13213,1796599170.1011891364,1796599184.217005968,1);
CREATE TABLE stream_state (
	id INTEGER NOT NULL, 
	enabled BOOLEAN NOT NULL, 
	rate FLOAT NOT NULL, 
	scenario VARCHAR(40) NOT NULL, 
	ramp INTEGER NOT NULL, 
	scenario_seq BIGINT NOT NULL, 
	label_delay INTEGER NOT NULL, 
	closed_loop BOOLEAN NOT NULL, 
	next_seq BIGINT NOT NULL, 
	labelled_seq BIGINT NOT NULL, 
	produced_at FLOAT, 
	lease_owner VARCHAR(120), 
	lease_until FLOAT, 
	updated_at FLOAT NOT NULL, 
	updated_by VARCHAR(200) NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE stream_claims (
	seq BIGINT NOT NULL, 
	claim_id BIGINT NOT NULL, 
	ts FLOAT NOT NULL, 
	scenario VARCHAR(40) NOT NULL, 
	intensity FLOAT NOT NULL, 
	cpt_bucket VARCHAR(40) NOT NULL, 
	provider_type VARCHAR(40) NOT NULL, 
	diagnosis_group VARCHAR(40) NOT NULL, 
	billed_amount FLOAT NOT NULL, 
	allowed_amount FLOAT NOT NULL, 
	patient_age FLOAT NOT NULL, 
	champion_version INTEGER NOT NULL, 
	p_approved FLOAT NOT NULL, 
	approved BOOLEAN NOT NULL, 
	shadow_version INTEGER, 
	shadow_p_approved FLOAT, 
	shadow_approved BOOLEAN, 
	hidden_outcome BOOLEAN NOT NULL, 
	outcome BOOLEAN, 
	labelled_at FLOAT, 
	PRIMARY KEY (seq), 
	UNIQUE (claim_id)
);
CREATE TABLE stream_snapshots (
	id INTEGER NOT NULL, 
	ts FLOAT NOT NULL, 
	seq BIGINT NOT NULL, 
	champion_version INTEGER, 
	scenario VARCHAR(40) NOT NULL, 
	status VARCHAR(20) NOT NULL, 
	level VARCHAR(20), 
	max_psi FLOAT, 
	prediction_psi FLOAT, 
	drift_share FLOAT, 
	realised_accuracy FLOAT, 
	estimated_accuracy FLOAT, 
	agreement FLOAT, 
	detail JSON NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE steps (
	id INTEGER NOT NULL, 
	run_id INTEGER NOT NULL, 
	name VARCHAR(64) NOT NULL, 
	position INTEGER NOT NULL, 
	stage VARCHAR(16) NOT NULL, 
	status VARCHAR(32) NOT NULL, 
	attempt INTEGER NOT NULL, 
	queued_at FLOAT, 
	started_at FLOAT, 
	finished_at FLOAT, 
	heartbeat_at FLOAT, 
	worker VARCHAR(120), 
	outputs JSON, 
	error TEXT, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_steps_run_name UNIQUE (run_id, name), 
	FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE
);
INSERT INTO steps VALUES(1,1,'commit_received',0,'CI','succeeded',1,1796599157.7366917133,1796599157.7440931797,1796599157.7615072726,1796599157.7520117759,'vm:13010:899ae4','{"sha": "66edfed0fddcb0fd84736d702a15857710dacfde", "message": "made by 1c03486, failed at data validation", "author": "", "seed": 41, "dataset_window": "2025-01-01..2025-06-30", "window_days": 181, "failure_modes": ["schema_validation"]}',NULL);
INSERT INTO steps VALUES(2,1,'ci_tests',1,'CI','succeeded',1,1796599157.7641844748,1796599157.7658696174,1796599162.5473949909,1796599161.7589905262,'vm:13010:899ae4','{"tests": [{"name": "test_training::test_the_ci_model_trained_on_this_runs_sample_clears_the_bar", "outcome": "passed", "duration": 0.552, "message": ""}, {"name": "test_validation::test_this_runs_sample_meets_the_data_contract", "outcome": "passed", "duration": 0.021, "message": ""}, {"name": "test_validation::test_this_runs_sample_has_the_size_and_columns_the_step_promised", "outcome": "passed", "duration": 0.002, "message": ""}], "passed": 3, "failed": 0, "skipped": 0, "duration_seconds": 0.575, "exit_code": 0, "sample_rows": 8000, "lint": {"tool": "ruff", "issues": [], "exit_code": 0}}',NULL);
INSERT INTO steps VALUES(3,1,'data_validation',2,'CI','failed',1,1796599157.7650897503,1796599157.7677459717,1796599157.9227724075,1796599157.7679843902,'vm:13010:899ae4','{"passed": false, "n_rows": 40000, "checks": [{"name": "required_columns", "passed": false, "failing_rows": 40000, "examples": ["missing column: diagnosis_group"], "detail": "Fix the column layout (missing column: diagnosis_group): each of claim_id, service_date, cpt_bucket, provider_type, diagnosis_group, billed_amount, allowed_amount, patient_age, outcome must appear exactly once; extra columns are ignored."}, {"name": "dtypes", "passed": false, "failing_rows": 0, "examples": [], "detail": "Not fully evaluated because diagnosis_group is missing; fix required_columns and dtypes first."}, {"name": "allowed_categories", "passed": false, "failing_rows": 0, "examples": [], "detail": "Not fully evaluated because diagnosis_group is missing; fix required_columns and dtypes first."}, {"name": "billed_amount_positive", "passed": true, "failing_rows": 0, "examples": [], "detail": ""}, {"name": "allowed_amount_positive", "passed": true, "failing_rows": 0, "examples": [], "detail": ""}, {"name": "allowed_within_billed", "passed": true, "failing_rows": 0, "examples": [], "detail": ""}, {"name": "patient_age_range", "passed": true, "failing_rows": 0, "examples": [], "detail": ""}, {"name": "no_nulls", "passed": false, "failing_rows": 0, "examples": [], "detail": "Not fully evaluated because diagnosis_group is missing; fix required_columns and dtypes first."}, {"name": "unique_claim_id", "passed": true, "failing_rows": 0, "examples": [], "detail": ""}]}','data contract violated in 4 checks (required_columns, dtypes, allowed_categories, no_nulls); first: Fix the column layout (missing column: diagnosis_group): each of claim_id, service_date, cpt_bucket, provider_type, diagnosis_group, billed_amount, allowed_amount, patient_age, outcome must appear exactly once; extra columns are ignored.');
INSERT INTO steps VALUES(4,1,'ci_quick_train',3,'CI','skipped',0,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO steps VALUES(5,1,'mlflow_log_ci',4,'CI','skipped',0,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO steps VALUES(6,1,'cd_full_train',5,'CD','skipped',0,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO steps VALUES(7,1,'evaluate_vs_champion',6,'CD','skipped',0,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO steps VALUES(8,1,'manual_approval',7,'CD','skipped',0,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO steps VALUES(9,1,'deploy_staging',8,'Deploy','skipped',0,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO steps VALUES(10,1,'shadow_monitor',9,'Deploy','skipped',0,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO steps VALUES(11,1,'promote_prod',10,'Deploy','skipped',0,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO steps VALUES(12,2,'commit_received',0,'CI','succeeded',1,1796599170.1032276153,1796599170.1195454597,1796599170.13392663,1796599170.1239824295,'vm:13213:b243a3','{"sha": "7e1c08b8810694cd1dd66fccf6cdc84cf201d8de", "message": "made by 1c03486, CI passed", "author": "", "seed": 42, "dataset_window": "2025-01-01..2025-06-30", "window_days": 181, "failure_modes": []}',NULL);
INSERT INTO steps VALUES(13,2,'ci_tests',1,'CI','succeeded',1,1796599170.1365036964,1796599170.1386046409,1796599179.7731993197,1796599178.1939849853,'vm:13213:b243a3','{"tests": [{"name": "test_training::test_the_ci_model_trained_on_this_runs_sample_clears_the_bar", "outcome": "passed", "duration": 0.89, "message": ""}, {"name": "test_validation::test_this_runs_sample_meets_the_data_contract", "outcome": "passed", "duration": 0.02, "message": ""}, {"name": "test_validation::test_this_runs_sample_has_the_size_and_columns_the_step_promised", "outcome": "passed", "duration": 0.002, "message": ""}], "passed": 3, "failed": 0, "skipped": 0, "duration_seconds": 0.912, "exit_code": 0, "sample_rows": 8000, "lint": {"tool": "ruff", "issues": [], "exit_code": 0}}',NULL);
INSERT INTO steps VALUES(14,2,'data_validation',2,'CI','succeeded',1,1796599170.1376290321,1796599170.1413044929,1796599170.4388959407,1796599170.1420068741,'vm:13213:b243a3','{"passed": true, "n_rows": 40000, "checks": [{"name": "required_columns", "passed": true, "failing_rows": 0, "examples": [], "detail": ""}, {"name": "dtypes", "passed": true, "failing_rows": 0, "examples": [], "detail": ""}, {"name": "allowed_categories", "passed": true, "failing_rows": 0, "examples": [], "detail": ""}, {"name": "billed_amount_positive", "passed": true, "failing_rows": 0, "examples": [], "detail": ""}, {"name": "allowed_amount_positive", "passed": true, "failing_rows": 0, "examples": [], "detail": ""}, {"name": "allowed_within_billed", "passed": true, "failing_rows": 0, "examples": [], "detail": ""}, {"name": "patient_age_range", "passed": true, "failing_rows": 0, "examples": [], "detail": ""}, {"name": "no_nulls", "passed": true, "failing_rows": 0, "examples": [], "detail": ""}, {"name": "unique_claim_id", "passed": true, "failing_rows": 0, "examples": [], "detail": ""}]}',NULL);
INSERT INTO steps VALUES(15,2,'ci_quick_train',3,'CI','succeeded',1,1796599170.4426147937,1796599170.4438586235,1796599171.5193309783,1796599170.4470143318,'vm:13213:b243a3','{"metrics": {"n_rows": 2000, "accuracy": 0.7995, "precision": 0.7971, "recall": 0.9547, "f1": 0.8688, "roc_auc": 0.887, "false_denial_rate": 0.0453, "confusion_matrix": {"labels": ["Approved", "Denied"], "matrix": [[1328, 63], [338, 271]], "actual_Approved": {"predicted_Approved": 1328, "predicted_Denied": 63}, "actual_Denied": {"predicted_Approved": 338, "predicted_Denied": 271}}}, "params": {"n_estimators": 20, "max_leaf_nodes": 128, "max_features": 4, "min_samples_leaf": 10, "max_samples": 0.5, "n_jobs": 2}, "decision_threshold": 0.3569408073897192, "threshold_choice": {"threshold": 0.356941, "cost_per_claim": 0.208333, "cost_per_claim_at_half": 0.260833, "validation_rows": 1200, "costs": {"false_denial": 2.0, "false_approval": 1.0}, "rule": "minimise expected cost per claim on the validation split (2 per false denial, 1 per false approval); ties go to the lowest threshold"}, "train_rows": 4800, "validation_rows": 1200, "holdout_rows": 2000, "fit_seconds": 0.27, "split": {"sample_rows": 8000, "holdout_share": 0.25, "validation_share": 0.2, "seed": 42}, "datasets": {"training": {"rows": 4800, "digest": "182f3399728c19d7a0632c48e20243dd"}, "validation": {"rows": 1200, "digest": "bfe5c1e1b6a90576a42ca52811cc18e5"}, "evaluation": {"rows": 2000, "digest": "dd3307aa08058d3a6557a8021124c2ef"}}}',NULL);
INSERT INTO steps VALUES(16,2,'mlflow_log_ci',4,'CI','succeeded',1,1796599171.5222506523,1796599171.5234885216,1796599184.6578352451,1796599184.2139885426,'vm:13213:b243a3','{"mlflow_run_id": "a90e3d23b31149c181aaa6080f603f39", "experiment": "claims-settlement", "tracking_uri": "sqlite:////tmp/store-1c03486/mlflow.db", "dataset_digest": "182f3399728c19d7a0632c48e20243dd", "datasets": {"training": {"rows": 4800, "digest": "182f3399728c19d7a0632c48e20243dd"}, "validation": {"rows": 1200, "digest": "bfe5c1e1b6a90576a42ca52811cc18e5"}, "evaluation": {"rows": 2000, "digest": "dd3307aa08058d3a6557a8021124c2ef"}}, "tags": {"commit_sha": "7e1c08b8810694cd1dd66fccf6cdc84cf201d8de", "stage": "CI", "dataset_window": "2025-01-01..2025-06-30", "seed": "42", "model_version": "unregistered", "pipeline_run_id": "2"}}',NULL);
INSERT INTO steps VALUES(17,2,'cd_full_train',5,'CD','pending',0,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO steps VALUES(18,2,'evaluate_vs_champion',6,'CD','pending',0,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO steps VALUES(19,2,'manual_approval',7,'CD','pending',0,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO steps VALUES(20,2,'deploy_staging',8,'Deploy','pending',0,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO steps VALUES(21,2,'shadow_monitor',9,'Deploy','pending',0,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO steps VALUES(22,2,'promote_prod',10,'Deploy','pending',0,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
CREATE TABLE run_origin (
	run_id INTEGER NOT NULL, 
	"trigger" VARCHAR(40) NOT NULL, 
	shift JSON, 
	detail JSON, 
	PRIMARY KEY (run_id), 
	FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE
);
CREATE INDEX ix_runs_status ON runs (status);
CREATE INDEX ix_runs_created ON runs (created_at);
CREATE INDEX ix_logs_run_step_id ON logs (run_id, step, id);
CREATE INDEX ix_audit_ts ON audit (ts);
CREATE INDEX ix_alias_history ON alias_history (alias, since);
CREATE INDEX ix_stream_snapshots_seq ON stream_snapshots (seq);
CREATE INDEX ix_steps_status_queued ON steps (status, queued_at);
CREATE INDEX ix_steps_run ON steps (run_id, position);
COMMIT;
